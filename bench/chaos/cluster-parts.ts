// What `npm run chaos -- cluster` watches the cluster with: the simulator as a process,
// a QoS 1 subscriber that counts redeliveries, the map's live stream, and the probes
// (the brokers' connection gauges, the apis' /api/ready).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { signDeviceToken } from '@skyline/auth'
import { sample } from '../../apps/broker/test/broker-process.ts'
import { STACK_SECRET, stopChild } from '../stack.ts'
import type { Parts } from './parts.ts'

const SIM_MAIN = fileURLToPath(new URL('../../apps/drone-sim/src/main.ts', import.meta.url))
const TSX_LOADER = new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url).href

export interface SimFleet {
  /** Lands the fleet (SIGINT) and returns what the broker acknowledged to its devices. */
  stop(): Promise<{ telemetryAcked: number; eventsAcked: number }>
}

/**
 * `npm run sim` of `drones` drones of `fleet`, QoS 1 telemetry at 1 Hz (events are
 * always QoS 1), stations asking for deliveries that the leader's dispatcher assigns.
 * Resolves once every device is connected and the fleet flies.
 */
export async function startSim(
  parts: Parts,
  mqttUrl: string,
  fleet: string,
  drones: number,
): Promise<SimFleet> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      TSX_LOADER,
      SIM_MAIN,
      ...['--fleet', fleet, '--drones', String(drones), '--stations', '20'],
      ...['--telemetry-qos', '1', '--rate', '1', '--radius-km', '5'],
    ],
    {
      env: { ...process.env, MQTT_URL: mqttUrl, DEVICE_TOKEN_SECRET: STACK_SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  parts.defer(() => stopChild(child))
  const out: string[] = []
  createInterface({ input: child.stdout }).on('line', (l) => out.push(l))
  createInterface({ input: child.stderr }).on('line', (l) => out.push(l))
  const exited = once(child, 'exit')
  await waitFor(
    () => out.some((l) => l.startsWith(`fleet ${fleet} flying`)),
    120_000,
    () => child.exitCode !== null && new Error(`simulator exited: ${out.join('\n')}`),
    `the fleet of ${drones} drones connected`,
  )
  return {
    async stop() {
      child.kill('SIGINT')
      await exited
      const m = out
        .map((l) => /acknowledged by the broker \(QoS 1\): (\d+) telemetry, (\d+) events/.exec(l))
        .find((x) => x !== null)
      if (m == null) throw new Error(`simulator printed no summary: ${out.slice(-5).join('\n')}`)
      return { telemetryAcked: Number(m[1]), eventsAcked: Number(m[2]) }
    },
  }
}

/**
 * A QoS 1 subscriber of the fleet's telemetry and events on a persistent session, as the
 * api's ingest is: how many messages reached it more than once (what a store without
 * keys would hold twice).
 */
export async function redeliveryCounter(
  parts: Parts,
  mqttUrl: string,
  fleet: string,
): Promise<{ received: () => number; redelivered: () => number }> {
  const client = await parts.client(
    mqttUrl,
    { role: 'service', sub: `observer-${fleet}` },
    { clean: false, reconnectPeriod: 500 },
  )
  client.on('error', () => {}) // a refused reconnect while a broker restarts: tried again
  const seen = new Set<string>()
  let received = 0
  let redelivered = 0
  client.on('message', (topic, payload) => {
    received++
    const body = JSON.parse(payload.toString()) as { seq?: number; id?: string }
    const key = `${topic}|${body.seq ?? body.id}`
    if (seen.has(key)) redelivered++
    else seen.add(key)
  })
  await client.subscribeAsync({
    [`fleet/${fleet}/drones/+/telemetry`]: { qos: 1 },
    [`fleet/${fleet}/drones/+/events`]: { qos: 1 },
  })
  return { received: () => received, redelivered: () => redelivered }
}

/**
 * The map of one api: its live stream (signed in as a viewer of `fleet`), reopened
 * whenever it closes, with each drone's newest position time as the frames tell it.
 */
export class MapWatcher {
  /** Drone id → positionAt of its newest position seen, epoch ms. */
  readonly positions = new Map<string, number>()
  /** Position changes received (0 on a stream that shows the fleet frozen). */
  changes = 0
  private ws: WebSocket | undefined
  private closed = false

  private constructor(
    readonly apiUrl: string,
    private readonly token: string,
  ) {}

  static async open(parts: Parts, apiUrl: string, fleet: string): Promise<MapWatcher> {
    const token = await signDeviceToken(STACK_SECRET, { role: 'viewer', sub: 'map', fleet })
    const map = new MapWatcher(apiUrl, token)
    parts.defer(() => map.close())
    map.connect()
    return map
  }

  /** Drones whose newest position on this map is from `sinceMs` (epoch) or later. */
  freshSince(sinceMs: number): number {
    let n = 0
    for (const at of this.positions.values()) if (at >= sinceMs) n++
    return n
  }

  close(): void {
    this.closed = true
    this.ws?.terminate()
  }

  private connect(): void {
    if (this.closed) return
    const ws = new WebSocket(`${this.apiUrl.replace(/^http/, 'ws')}/api/live`)
    this.ws = ws
    ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token: this.token })))
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as {
        type: string
        drones?: { id: string; positionAt?: string | null }[]
      }
      if (frame.type !== 'snapshot' && frame.type !== 'changes') return
      for (const d of frame.drones ?? []) {
        if (d.positionAt == null) continue
        if (frame.type === 'changes') this.changes++
        const at = Date.parse(d.positionAt)
        if (at > (this.positions.get(d.id) ?? 0)) this.positions.set(d.id, at)
      }
    })
    ws.on('error', () => {}) // 'close' follows
    // As the map does: try again a moment later (the api may be restarting).
    ws.on('close', () => setTimeout(() => this.connect(), 500).unref())
  }
}

/** Clients connected now over the brokers that answer (a dead one counts 0). */
export async function brokerConnections(metricsPorts: number[]): Promise<number> {
  const counts = await Promise.all(
    metricsPorts.map(async (port) => {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
        signal: AbortSignal.timeout(1_000),
      }).catch(() => undefined)
      return res?.ok ? sample(await res.text(), 'skyline_broker_connections') : 0
    }),
  )
  return counts.reduce((a, b) => a + b, 0)
}

export interface Readiness {
  ready: boolean
  role: 'leader' | 'follower'
  instance: string
}

/** An api's /api/ready, or undefined when it does not answer (within 1.5 s). */
export async function readiness(apiUrl: string): Promise<Readiness | undefined> {
  const res = await fetch(`${apiUrl}/api/ready`, { signal: AbortSignal.timeout(1_500) }).catch(
    () => undefined,
  )
  return res === undefined ? undefined : ((await res.json()) as Readiness)
}

/** Resolves once `done()` holds; rejects after `timeoutMs` or when `failed()` returns an error. */
export async function waitFor(
  done: () => boolean | Promise<boolean>,
  timeoutMs: number,
  failed: () => Error | false = () => false,
  what = 'the condition',
): Promise<void> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const err = failed()
    if (err !== false) throw err
    if (await done()) return
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`)
    await new Promise((r) => setTimeout(r, 200))
  }
}
