// What the benchmark reads about processes and the machine, from /proc (Linux only).
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'

/** Resident memory of a process now (VmRSS), bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1]
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(kb) * 1024
}

/** CPU time a process has used so far (utime + stime), in clock ticks of `clockTicksPerS`. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are fields 14 and 15 of proc(5), so 11 and 12 after the name and state.
  return Number(fields[11]) + Number(fields[12])
}

/** CPU time all processes have used so far, in clock ticks (summed over cores). */
export function machineBusyTicks(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.split(/\s+/).slice(1)
  // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
  return [0, 1, 2, 5, 6, 7].reduce((sum, k) => sum + Number(cpu[k] ?? 0), 0)
}

/**
 * Waits until the whole machine has used less than `maxBusyPct` of a core for a second,
 * or `maxWaitMs` passed. Resolves with the last second's figure.
 */
export async function waitForQuiet(
  maxBusyPct: number,
  maxWaitMs: number,
  signal: AbortSignal,
): Promise<number> {
  const until = Date.now() + maxWaitMs
  for (;;) {
    const before = machineBusyTicks()
    await sleep(1_000, undefined, { signal })
    const busyPct = ((machineBusyTicks() - before) / clockTicksPerS()) * 100
    if (busyPct < maxBusyPct || Date.now() >= until) return busyPct
  }
}

let userHz: number | undefined

/** USER_HZ, the unit of cpuTicks (100 on every common Linux, but asking costs little). */
export function clockTicksPerS(): number {
  if (userHz === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout ?? ''
    userHz = Number(out.trim()) || 100
  }
  return userHz
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export interface MachineInfo {
  cpu: string
  cores: number
  node: string
  mosquitto: string
}

export function machineInfo(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  // `mosquitto -h` prints its version first (and exits with 3).
  const help = spawnSync('mosquitto', ['-h'], { encoding: 'utf8' }).stdout ?? ''
  return {
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    cores: availableParallelism(),
    node: process.version,
    mosquitto: /mosquitto version (\S+)/.exec(help)?.[1] ?? 'unknown',
  }
}
