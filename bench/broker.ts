// The broker benchmark: the bundled broker (aedes) against Mosquitto, both driven by the
// same load generator, runs alternating between them.
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { signDeviceToken } from '@skyline/auth'
import type { DeviceClaims } from '@skyline/auth'
import { sample, spawnBroker } from '../apps/broker/test/broker-process.ts'
import { runLoad } from './load-process.ts'
import type { Credentials, IdleResult, ThroughputResult } from './load-types.ts'
import { mosquittoDaemon, startMosquitto } from './mosquitto.ts'
import { clockTicksPerS, waitForQuiet } from './proc.ts'
import { telemetryPayload } from './telemetry.ts'

export type BrokerName = 'bundled' | 'mosquitto'
const BROKERS: readonly BrokerName[] = ['bundled', 'mosquitto']

export interface BrokerBenchSettings {
  /** Runs per broker and QoS. */
  runs: number
  warmupMs: number
  measureMs: number
  drainMs: number
  publishers: number
  qos0MaxInFlight: number
  qos1Window: number
  /**
   * Both brokers PUBACK a publish on receipt, before delivering it, so the per-publisher
   * window alone does not bound what waits for the subscriber (Mosquitto queues it and
   * drops QoS 1 beyond max_queued_messages; aedes stops reading the publisher until the
   * subscriber's socket drains). Capping what is in flight end to end at
   * publishers x window keeps the offered load at what the windows describe.
   */
  qos1MaxInFlight: number
  /**
   * The machine may be shared. A throughput run starts once the machine has used less
   * than `disturbedPct` of a core for a second (or after `quietWaitMs`); a run in which
   * other processes used more is repeated, up to `attempts` in all, and the least
   * disturbed attempt is kept.
   */
  disturbedPct: number
  attempts: number
  quietWaitMs: number
  /** Idle connection counts for the memory measure. */
  idleClients: number[]
  /** Wait after the last CONNACK before the first memory figure is read, ms. */
  idleSettleMs: number
  /**
   * How long the idle clients stay connected before the steady figure is read: V8
   * returns the connection storm's garbage by itself (its memory reducer) some 10 to
   * 40 s after allocation stops.
   */
  idleSteadyMs: number
  payloadBytes: number
}

export function settingsFor(quick: boolean): BrokerBenchSettings {
  const publishers = 100
  const qos1Window = 10
  return {
    runs: quick ? 2 : 3,
    warmupMs: quick ? 1_000 : 2_000,
    measureMs: quick ? 4_000 : 10_000,
    drainMs: quick ? 1_000 : 2_000,
    publishers,
    qos0MaxInFlight: 2_000,
    qos1Window,
    qos1MaxInFlight: publishers * qos1Window,
    disturbedPct: 25,
    attempts: 3,
    quietWaitMs: quick ? 10_000 : 30_000,
    idleClients: quick ? [1_000] : [1_000, 10_000],
    idleSettleMs: 2_000,
    idleSteadyMs: quick ? 10_000 : 45_000,
    payloadBytes: telemetryPayload().payload.length,
  }
}

export interface ThroughputRun extends ThroughputResult {
  broker: BrokerName
  qos: 0 | 1
  round: number
  fleet: string
  /** 1 unless earlier attempts were disturbed by other processes (see disturbedPct). */
  attempt?: number
  /** Machine CPU use in the second before the run started, % of a core. */
  busyBeforePct?: number
  /** Deliveries the bundled broker counted as dropped during the run, by reason. */
  drops?: Record<string, number>
}

export interface IdleRun extends IdleResult {
  broker: BrokerName
}

/** A run that did not finish; the others still count. */
export interface FailedRun {
  broker: BrokerName
  what: string
  error: string
  /** The bundled broker's last warnings and stderr lines, if any. */
  brokerLog?: string[]
}

export interface BrokerBenchResult {
  settings: BrokerBenchSettings
  throughput: ThroughputRun[]
  idle: IdleRun[]
  failed: FailedRun[]
}

/** A broker under test: where to connect, which process to watch, and how to let it go. */
interface Target {
  port: number
  pid: number
  metrics?: () => Promise<string>
  metricsPort?: number
  recentLog?: () => string[]
  close(): Promise<void>
}

// A fresh secret per bench: its tokens are good only on the brokers it starts.
const SECRET = randomBytes(24).toString('hex')

type Purpose = 'memory' | 'throughput'

/**
 * A fresh bundled broker every time. Mosquitto: the system daemon for throughput, a
 * fresh instance for memory (see startMosquitto).
 */
async function open(broker: BrokerName, purpose: Purpose): Promise<Target> {
  if (broker === 'mosquitto') {
    const m = purpose === 'memory' ? await startMosquitto() : mosquittoDaemon()
    return { port: m.port, pid: m.pid, close: () => m.stop() }
  }
  const proc = await spawnBroker({
    DEVICE_TOKEN_SECRET: SECRET,
    MQTT_RATE_LIMIT: '0', // Mosquitto has no per-client rate limit
    MQTT_MAX_CONNECTIONS: '20000',
  })
  return {
    port: proc.ports.mqtt,
    pid: proc.child.pid!, // the broker itself: spawnBroker runs `node --import tsx`
    metrics: () => proc.metrics(),
    metricsPort: proc.ports.metrics,
    recentLog: () =>
      [
        ...proc.logs.filter((l) => Number(l.level) >= 40).map((l) => JSON.stringify(l)),
        ...proc.stderr,
        ...(proc.child.exitCode !== null ? [`exited with ${proc.child.exitCode}`] : []),
      ].slice(-10),
    async close() {
      await proc.stop() // SIGTERM, then SIGKILL after 10 s
    },
  }
}

async function credentials(claims: DeviceClaims): Promise<Credentials> {
  const password = await signDeviceToken(SECRET, claims)
  return { username: claims.sub, password, clientId: claims.sub }
}

const DROP_REASONS = ['overload', 'slow_subscriber'] as const

async function drops(target: Target): Promise<Record<string, number> | undefined> {
  if (!target.metrics) return undefined
  const text = await target.metrics()
  return Object.fromEntries(
    DROP_REASONS.map((r) => [r, sample(text, 'skyline_broker_dropped_total', `reason="${r}"`)]),
  )
}

async function throughputRun(
  broker: BrokerName,
  target: Target,
  qos: 0 | 1,
  round: number,
  s: BrokerBenchSettings,
  signal: AbortSignal,
): Promise<ThroughputRun> {
  // A fresh fleet per run, so nothing Mosquitto kept from an earlier run is on its topics.
  const fleet = `bench-${randomBytes(4).toString('hex')}`
  const publishers = await Promise.all(
    Array.from({ length: s.publishers }, (_, i) =>
      credentials({ role: 'drone', sub: `d${i}`, fleet }),
    ),
  )
  const before = await drops(target)
  const result = await runLoad(
    {
      mode: 'throughput',
      port: target.port,
      brokerPid: target.pid,
      clockTicksPerS: clockTicksPerS(),
      qos,
      topicPrefix: `fleet/${fleet}/drones/`,
      filter: `fleet/${fleet}/drones/+/telemetry`,
      publishers,
      subscriber: await credentials({ role: 'service', sub: 'bench-sub' }),
      maxInFlight: qos === 0 ? s.qos0MaxInFlight : s.qos1MaxInFlight,
      perPublisherWindow: s.qos1Window,
      warmupMs: s.warmupMs,
      measureMs: s.measureMs,
      drainMs: s.drainMs,
    },
    s.warmupMs + s.measureMs + s.drainMs + 30_000,
    signal,
  )
  const after = await drops(target)
  const run: ThroughputRun = { broker, qos, round, fleet, ...result }
  if (before && after) {
    run.drops = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]))
  }
  return run
}

export async function benchBrokers(
  s: BrokerBenchSettings,
  signal: AbortSignal,
  progress: (line: string) => void,
): Promise<BrokerBenchResult> {
  const result: BrokerBenchResult = { settings: s, throughput: [], idle: [], failed: [] }

  /** Runs `measure` against a freshly opened broker; a failure is kept and the bench goes on. */
  async function withBroker(
    broker: BrokerName,
    purpose: Purpose,
    what: string,
    measure: (target: Target) => Promise<void>,
  ): Promise<void> {
    signal.throwIfAborted()
    const target = await open(broker, purpose)
    try {
      await measure(target)
    } catch (err) {
      if (signal.aborted) throw err
      const error = err instanceof Error ? err.message : String(err)
      result.failed.push({ broker, what, error, brokerLog: target.recentLog?.() })
      progress(`${what} ${broker}: FAILED: ${error}`)
    } finally {
      await target.close()
    }
  }

  // Memory: N idle clients on a fresh broker of each kind. The 20 warm-up clients are
  // connected before the baseline, so code loaded on first use is not counted per client.
  const warmup = await Promise.all(
    Array.from({ length: 20 }, (_, i) => credentials({ role: 'drone', sub: `w${i}`, fleet: 'f1' })),
  )
  for (const n of s.idleClients) {
    const clients = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        credentials({ role: 'drone', sub: `m${i}`, fleet: 'f1' }),
      ),
    )
    for (const broker of BROKERS) {
      await withBroker(broker, 'memory', `idle ${n}`, async (target) => {
        // Let a just-started broker finish loading before its RSS is taken as the baseline.
        await sleep(1_000, undefined, { signal })
        const idle = await runLoad(
          {
            mode: 'idle',
            port: target.port,
            brokerPid: target.pid,
            warmup,
            clients,
            batch: 100,
            settleMs: s.idleSettleMs,
            steadyMs: s.idleSteadyMs,
            metricsPort: target.metricsPort,
          },
          120_000 + 2 * s.idleSteadyMs,
          signal,
        )
        result.idle.push({ broker, ...idle })
        const kb = (bytes: number) => (bytes / 1024).toFixed(1)
        progress(
          `idle ${n} ${broker}: ${kb(idle.bytesPerClient)} KB/connection after connecting, ` +
            `${kb(idle.steadyBytesPerClient)} KB ${s.idleSteadyMs / 1000} s later`,
        )
      })
    }
  }

  for (let round = 0; round < s.runs; round++) {
    for (const broker of BROKERS) {
      // A fresh bundled broker per round, serving its QoS 0 and QoS 1 runs and their repeats.
      const what = `round ${round + 1}/${s.runs}`
      await withBroker(broker, 'throughput', what, async (target) => {
        for (const qos of [0, 1] as const) {
          // See disturbedPct.
          let best: ThroughputRun | undefined
          for (let attempt = 1; attempt <= s.attempts; attempt++) {
            const busyBeforePct = await waitForQuiet(s.disturbedPct, s.quietWaitMs, signal)
            const run = await throughputRun(broker, target, qos, round, s, signal)
            Object.assign(run, { attempt, busyBeforePct })
            if (!best || run.otherCpuPct < best.otherCpuPct) best = run
            progress(
              `${what} ${broker} QoS ${qos}: ${Math.round(run.msgsPerS)} msgs/s, lost ${run.lost}, ` +
                `CPU % broker ${run.brokerCpuPct.toFixed(0)}, load ${run.loadCpuPct.toFixed(0)}, ` +
                `other ${run.otherCpuPct.toFixed(0)}`,
            )
            if (run.otherCpuPct <= s.disturbedPct) break
          }
          result.throughput.push(best!)
        }
      })
    }
  }
  return result
}
