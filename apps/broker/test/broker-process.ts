import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { BROKER_NODE_FLAGS } from '../src/node-flags.ts'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const TSX_LOADER = new URL('../../../node_modules/tsx/dist/loader.mjs', import.meta.url).href

/**
 * Node arguments that make a spawned process write a V8 CPU profile into
 * SKYLINE_CPU_PROF_DIR when it exits; none when that is unset.
 */
export function profileArgs(): string[] {
  const dir = process.env.SKYLINE_CPU_PROF_DIR
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : []
}

export interface BrokerProcess {
  child: ChildProcess
  ports: { mqtt: number; ws?: number; mqtts?: number; metrics?: number }
  /** Log lines (pino JSON, parsed) and stderr lines seen so far. */
  logs: Record<string, unknown>[]
  stderr: string[]
  /** Resident memory of the broker process now, bytes. */
  rssBytes(): number
  metrics(): Promise<string>
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>
}

/**
 * The broker as users run it (`npm run broker`), in its own process, on ephemeral
 * ports read back from its "broker listening" log line.
 */
export async function spawnBroker(
  env: Record<string, string>,
  timeoutMs = 15_000,
  /** Another checkout to run the broker of (`npm run chaos -- --root DIR`). Default this one. */
  root?: string,
): Promise<BrokerProcess> {
  // `node --import tsx` rather than the tsx CLI, which would run the broker in a child
  // of its own: child.pid must be the broker, for its memory and for signals.
  // SKYLINE_CPU_PROF_DIR=/some/dir: the broker writes a V8 CPU profile there when it
  // exits (node --cpu-prof is not allowed in NODE_OPTIONS).
  const child = spawn(
    process.execPath,
    [
      ...profileArgs(),
      ...BROKER_NODE_FLAGS,
      '--import',
      TSX_LOADER,
      root === undefined ? MAIN : `${root}/apps/broker/src/main.ts`,
    ],
    {
      env: {
        ...process.env,
        MQTT_PORT: '0',
        MQTT_WS_PORT: '0',
        BROKER_METRICS_PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const logs: Record<string, unknown>[] = []
  const stderr: string[] = []
  createInterface({ input: child.stderr }).on('line', (line) => stderr.push(line))
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  )
  const starting = new Promise<BrokerProcess['ports']>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`broker did not start within ${timeoutMs} ms: ${stderr.join('\n')}`)),
      timeoutMs,
    )
    void exited.then((code) =>
      reject(new Error(`broker exited with ${code}: ${stderr.join('\n')}`)),
    )
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>
      logs.push(entry)
      if (entry.msg === 'broker listening') {
        clearTimeout(timer)
        resolve(entry as unknown as BrokerProcess['ports'])
      }
    })
  })
  let ports: BrokerProcess['ports']
  try {
    ports = await starting
  } catch (err) {
    child.kill('SIGKILL') // a broker that did not start must not outlive the test
    throw err
  }
  return {
    child,
    ports,
    logs,
    stderr,
    rssBytes() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
      return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024
    },
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${ports.metrics}/metrics`)
      return res.text()
    },
    async stop(signal = 'SIGTERM', stopTimeoutMs = 10_000) {
      if (child.exitCode !== null) return child.exitCode
      child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), stopTimeoutMs)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
}

/** The value of one sample in Prometheus text, 0 when absent. */
export function sample(metricsText: string, name: string, labels = ''): number {
  const line = metricsText
    .split('\n')
    .find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `))
  return line ? Number(line.split(' ').at(-1)) : 0
}
