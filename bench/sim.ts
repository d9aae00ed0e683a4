// The simulator at scale: one process flying N drones (N connections) at 1 Hz against the
// bundled broker. How long the fleet takes to connect, the telemetry rate the broker
// sustains, and what the simulator and the broker cost in CPU and memory meanwhile.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { sample, spawnBroker } from '../apps/broker/test/broker-process.ts'
import { clockTicksPerS, cpuTicks, rssBytes } from './proc.ts'

const SIM_MAIN = fileURLToPath(new URL('../apps/drone-sim/src/main.ts', import.meta.url))
const TSX_LOADER = new URL('../node_modules/tsx/dist/loader.mjs', import.meta.url).href
const SECRET = 'bench-secret-that-is-at-least-32-characters'

export interface SimSettings {
  drones: number
  stations: number
  /** Seconds of steady flight measured after every drone is connected. */
  measureS: number
}

export const simSettingsFor = (quick: boolean): SimSettings =>
  quick
    ? { drones: 2_000, stations: 20, measureS: 5 }
    : { drones: 10_000, stations: 50, measureS: 30 }

export interface SimResult extends SimSettings {
  connectS: number
  telemetryPerS: number
  sim: { cpuPctOfCore: number; rssMiB: number }
  broker: { cpuPctOfCore: number; rssMiB: number }
  stopS: number
}

export async function benchSim(
  s: SimSettings,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<SimResult> {
  const broker = await spawnBroker({ DEVICE_TOKEN_SECRET: SECRET })
  const sim = spawn(
    process.execPath,
    [
      '--import',
      TSX_LOADER,
      SIM_MAIN,
      '--drones',
      String(s.drones),
      '--stations',
      String(s.stations),
      '--radius-km',
      '20',
      '--rate',
      '1',
    ],
    {
      env: {
        ...process.env,
        MQTT_URL: `mqtt://127.0.0.1:${broker.ports.mqtt}`,
        DEVICE_TOKEN_SECRET: SECRET,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  )
  const exited = once(sim, 'exit')
  try {
    const brokerPid = broker.child.pid!
    const metric = async (name: string, labels = '') => sample(await broker.metrics(), name, labels)
    const started = performance.now()
    const devices = s.drones + s.stations
    // Poll the broker's connection gauge: the simulator has no connect event to wait on.
    while ((await metric('skyline_broker_connections')) < devices) {
      if (sim.exitCode !== null)
        throw new Error(`simulator exited with ${sim.exitCode} while connecting`)
      if (performance.now() - started > 300_000) throw new Error('fleet not connected within 300 s')
      await sleep(250, undefined, { signal })
    }
    const connectS = (performance.now() - started) / 1000
    log(`sim bench: ${devices} devices connected in ${connectS.toFixed(1)} s`)
    await sleep(3_000, undefined, { signal }) // let the first second's slots settle

    const t0 = performance.now()
    const in0 = await metric('skyline_broker_messages_in_total', 'qos="0"')
    const simCpu0 = cpuTicks(sim.pid!)
    const brokerCpu0 = cpuTicks(brokerPid)
    let simRss = 0
    let brokerRss = 0
    while (performance.now() - t0 < s.measureS * 1000) {
      await sleep(1_000, undefined, { signal })
      simRss = Math.max(simRss, rssBytes(sim.pid!))
      brokerRss = Math.max(brokerRss, rssBytes(brokerPid))
    }
    const seconds = (performance.now() - t0) / 1000
    const cpuPct = (ticks: number) => (ticks / clockTicksPerS() / seconds) * 100
    const result = {
      ...s,
      connectS,
      telemetryPerS:
        ((await metric('skyline_broker_messages_in_total', 'qos="0"')) - in0) / seconds,
      sim: { cpuPctOfCore: cpuPct(cpuTicks(sim.pid!) - simCpu0), rssMiB: simRss / 2 ** 20 },
      broker: {
        cpuPctOfCore: cpuPct(cpuTicks(brokerPid) - brokerCpu0),
        rssMiB: brokerRss / 2 ** 20,
      },
      stopS: 0,
    }
    const stopping = performance.now()
    sim.kill('SIGINT')
    await exited
    result.stopS = (performance.now() - stopping) / 1000
    return result
  } finally {
    if (sim.exitCode === null) sim.kill('SIGKILL')
    await broker.stop()
  }
}

export function simTable(r: SimResult): string {
  const f = (x: number, d = 0) =>
    x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
  return [
    `Simulator at scale: ${f(r.drones)} drones + ${f(r.stations)} stations (one connection each) at 1 Hz, one process, bundled broker beside it`,
    '| measure | value |',
    '| --- | --- |',
    `| whole fleet connected in | ${f(r.connectS, 1)} s |`,
    `| telemetry sustained (broker messages in/s, ${r.measureS} s window) | ${f(r.telemetryPerS)} |`,
    `| simulator CPU / peak RSS | ${f(r.sim.cpuPctOfCore)}% of a core / ${f(r.sim.rssMiB)} MiB |`,
    `| broker CPU / peak RSS | ${f(r.broker.cpuPctOfCore)}% of a core / ${f(r.broker.rssMiB)} MiB |`,
    `| Ctrl-C to every drone disconnected cleanly | ${f(r.stopS, 1)} s |`,
  ].join('\n')
}
