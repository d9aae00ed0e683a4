// Attacks on the path from a device to Postgres (issue 14, items 1-4).
import type { MqttClient } from 'mqtt'
import { percentile, telemetryPayload, until } from './parts.ts'
import { benchToken } from '../stack.ts'
import type { Parts } from './parts.ts'
import type { Attack } from './report.ts'

const DAY = 86_400_000

interface StackParts {
  mqttUrl: string
  apiUrl: string
  sql: Awaited<ReturnType<Parts['database']>>['sql']
}

async function stack(parts: Parts, brokerEnv: Record<string, string>): Promise<StackParts> {
  const broker = await parts.broker(brokerEnv)
  const { url, sql } = await parts.database()
  const apiUrl = await parts.api({ MQTT_URL: broker.url, DATABASE_URL: url })
  return { mqttUrl: broker.url, apiUrl, sql }
}

const count = async (sql: StackParts['sql'], table: string, where = 'true') =>
  Number((await sql.unsafe(`SELECT count(*)::int AS n FROM ${table} WHERE ${where}`))[0]!.n)

/** Publishes QoS 1 telemetry from `drones` drones at `rate` msg/s in all for `seconds`. */
async function qos1Stream(
  clients: MqttClient[],
  fleet: string,
  rate: number,
  seconds: number,
  signal: AbortSignal,
): Promise<number> {
  const perTickEach = Math.max(1, Math.round(rate / clients.length / 20)) // 20 ticks/s
  let sent = 0
  const started = performance.now()
  for (let tick = 0; performance.now() - started < seconds * 1000 && !signal.aborted; tick++) {
    for (const [i, c] of clients.entries()) {
      for (let k = 0; k < perTickEach; k++) {
        const payload = telemetryPayload(Date.now(), tick * perTickEach + k)
        c.publish(`fleet/${fleet}/drones/d${i}/telemetry`, payload, { qos: 1 }, () => {})
        sent++
      }
    }
    const next = started + (tick + 1) * 50
    await new Promise((r) => setTimeout(r, Math.max(0, next - performance.now())))
  }
  return sent
}

/** Waits until `stored()` reaches `sent` or stops growing for `quietMs`; returns the last count. */
async function drained(stored: () => Promise<number>, sent: number, quietMs = 15_000) {
  let last = -1
  let since = performance.now()
  for (;;) {
    const n = await stored()
    if (n >= sent) return n
    if (n !== last) [last, since] = [n, performance.now()]
    if (performance.now() - since > quietMs) return n
    await new Promise((r) => setTimeout(r, 250))
  }
}

export const redisQos1: Attack = {
  name: 'redis-qos1',
  async run(parts, { quick, signal }) {
    const seconds = quick ? 10 : 30
    const rate = 2_000
    const redisUrl = await parts.redis()
    const t0 = performance.now()
    const s = await stack(parts, { REDIS_URL: redisUrl })
    const ready = await until(async () => {
      const res = await fetch(`${s.apiUrl}/api/ready`).catch(() => undefined)
      return res?.status === 200 ? performance.now() : undefined
    }, 20_000)
    const fleet = 'chaos'
    const drones = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        parts.client(s.mqttUrl, { role: 'drone', sub: `d${i}`, fleet }),
      ),
    )
    const start = performance.now()
    const firstRow = until(
      async () => ((await count(s.sql, 'telemetry')) > 0 ? performance.now() : undefined),
      seconds * 1000 + 20_000,
      250,
    )
    const sent = await qos1Stream(drones, fleet, rate, seconds, signal)
    const stored = await drained(() => count(s.sql, 'telemetry'), sent)
    const first = await firstRow
    return {
      attack: `Redis (REDIS_URL): the api's session, ${rate.toLocaleString('en-US')} QoS 1 msg/s for ${seconds} s`,
      expected: 'ready only once subscribed; every message stored',
      happened: [
        ready === undefined
          ? 'never ready (20 s)'
          : `ready ${((ready - t0) / 1000).toFixed(1)} s after start`,
        first === undefined
          ? 'nothing stored'
          : `first row ${((first - start) / 1000).toFixed(1)} s into the load`,
        `${stored.toLocaleString('en-US')} of ${sent.toLocaleString('en-US')} stored`,
      ].join('; '),
      lost: sent - stored,
    }
  },
}

export const clusterCrosstalk: Attack = {
  name: 'cluster-crosstalk',
  async run(parts) {
    const redisUrl = await parts.redis()
    const a = await parts.broker({ REDIS_URL: `${redisUrl}/3`, BROKER_CLUSTER: 'one' })
    const b = await parts.broker({ REDIS_URL: `${redisUrl}/4`, BROKER_CLUSTER: 'two' })
    const fleet = 'x'
    const onA = await parts.client(a.url, { role: 'service', sub: 'on-a' })
    const onB = await parts.client(b.url, { role: 'service', sub: 'on-b' })
    await onA.subscribeAsync(`fleet/${fleet}/#`, { qos: 0 })
    await onB.subscribeAsync(`fleet/${fleet}/#`, { qos: 0 })
    const heard = { a: 0, b: [] as string[] }
    onA.on('message', () => heard.a++)
    onB.on('message', (_t, p) => heard.b.push(p.toString()))
    const droneA = await parts.client(a.url, { role: 'drone', sub: 'd1', fleet })
    const n = 100
    for (let i = 0; i < n; i++) droneA.publish(`fleet/${fleet}/drones/d1/telemetry`, 'from one')
    await until(async () => (heard.a >= n ? true : undefined), 10_000)
    // Whatever Redis routed to B before B's own message has reached B's subscriber first.
    const droneB = await parts.client(b.url, { role: 'drone', sub: 'd1', fleet })
    droneB.publish(`fleet/${fleet}/drones/d1/telemetry`, 'marker')
    await until(async () => (heard.b.includes('marker') ? true : undefined), 10_000)
    const crossed = heard.b.filter((p) => p === 'from one').length
    return {
      attack: 'two clusters on one Redis (databases 3 and 4), 100 messages on one',
      expected: 'the other cluster hears none',
      happened: `the other cluster heard ${crossed} of ${n}`,
      lost: 0,
    }
  },
}

export const badClock: Attack = {
  name: 'bad-clock',
  async run(parts, { quick, signal }) {
    const seconds = quick ? 10 : 30
    // The broker's default rate limit (100/s): the flood stays under it, as in the issue.
    const s = await stack(parts, { MQTT_RATE_LIMIT: '100' })
    const fleet = 'chaos'
    const healthy = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        parts.client(s.mqttUrl, { role: 'drone', sub: `h${i}`, fleet }),
      ),
    )
    const bad = await parts.client(s.mqttUrl, { role: 'drone', sub: 'bad', fleet })
    const published = new Map<string, number>() // `${drone}:${seq}` → when sent
    const latencies: number[] = []
    let stop = false
    const watch = (async () => {
      const seen = new Map<string, number>()
      while (!stop) {
        const rows = await s.sql<{ id: string; seq: number }[]>`
          SELECT id, last_seq AS seq FROM drones WHERE fleet_id = ${fleet} AND id LIKE 'h%'`
        const now = performance.now()
        for (const { id, seq } of rows) {
          for (let q = (seen.get(id) ?? -1) + 1; q <= seq; q++) {
            const at = published.get(`${id}:${q}`)
            if (at !== undefined) latencies.push(now - at)
          }
          seen.set(id, Math.max(seen.get(id) ?? -1, seq))
        }
        await new Promise((r) => setTimeout(r, 100))
      }
    })()
    let badSent = 0
    const flood = setInterval(() => {
      for (let i = 0; i < 9; i++) {
        badSent++
        bad.publish(
          `fleet/${fleet}/drones/bad/telemetry`,
          telemetryPayload(Date.now() + badSent * DAY, badSent),
          { qos: 1 },
          () => {},
        )
      }
    }, 100) // 90/s
    const started = performance.now()
    let healthySent = 0
    for (let seq = 0; performance.now() - started < seconds * 1000 && !signal.aborted; seq++) {
      for (const [i, c] of healthy.entries()) {
        published.set(`h${i}:${seq}`, performance.now())
        c.publish(`fleet/${fleet}/drones/h${i}/telemetry`, telemetryPayload(Date.now(), seq), {
          qos: 1,
        })
        healthySent++
      }
      await new Promise((r) => setTimeout(r, 500))
    }
    clearInterval(flood)
    const stored = await drained(() => count(s.sql, 'telemetry', `drone_id LIKE 'h%'`), healthySent)
    stop = true
    await watch
    const partitions = await count(
      s.sql,
      'pg_inherits i JOIN pg_class p ON p.oid = i.inhparent',
      `p.relname = 'telemetry'`,
    )
    latencies.sort((x, y) => x - y)
    const ms = (v: number) => `${Math.round(v)} ms`
    return {
      attack: `a drone's clock: ${badSent.toLocaleString('en-US')} QoS 1 points at 90/s, each on another far-future day, beside 12 healthy drones`,
      expected: 'its points dead letters; no partition for their days; healthy drones on time',
      happened: `${partitions} partitions; healthy publish-to-stored p50 ${ms(percentile(latencies, 50))}, p99 ${ms(percentile(latencies, 99))}; ${await count(s.sql, 'rejected_messages')} dead letters`,
      lost: healthySent - stored,
    }
  },
}

/** The examples and their kin: each must be a 4xx. */
const HOSTILE_URLS = [
  '/api/deliveries?from=0000-01-01T00:00:00Z',
  '/api/deliveries?to=-271821-04-20T00:00:00Z',
  `/api/deliveries?cursor=${Buffer.from('-8640000000000000|x').toString('base64url')}`,
  `/api/deliveries?cursor=${Buffer.from('2026-01-01T00:00:00Z|\u0000').toString('base64url')}`,
  '/api/deliveries?cursor=%00',
  '/api/drones/drone-1/track?fleet=demo&to=0001-01-01T00:00:00Z',
  '/api/drones/drone-1/track?fleet=demo&from=275760-09-13T00:00:00Z',
  '/api/deliveries?limit=1e309',
  '/api/drones/%E0%A4%A',
  `/api/drones/${'x'.repeat(10_000)}`,
]

export const hostileRest: Attack = {
  name: 'rest-hostile',
  async run(parts) {
    const broker = await parts.broker()
    const { url } = await parts.database()
    const apiUrl = await parts.api({ MQTT_URL: broker.url, DATABASE_URL: url })
    const fiveHundreds: string[] = []
    // Signed in: the hostile values must reach validation, not stop at a 401.
    const headers = { authorization: `Bearer ${await benchToken()}` }
    for (const path of HOSTILE_URLS) {
      const res = await fetch(apiUrl + path, { headers })
      if (res.status >= 500) fiveHundreds.push(`${res.status} ${path.slice(0, 40)}`)
    }
    return {
      attack: `REST: ${HOSTILE_URLS.length} hostile dates, cursors and paths (the fuzz test walks thousands)`,
      expected: 'every one a 4xx with the error shape',
      happened:
        fiveHundreds.length === 0
          ? 'no 5xx'
          : `${fiveHundreds.length} answered 5xx (${fiveHundreds.join(', ')})`,
      lost: 0,
    }
  },
}
