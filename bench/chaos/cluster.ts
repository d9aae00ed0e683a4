// `npm run chaos -- cluster` (issue 17, item 3): the cluster layout run for real on this
// machine: a Redis that keeps its data, two brokers on it behind Debian's haproxy with
// deploy/haproxy.cfg, two apis on one Postgres database (one leads), and a simulated
// fleet at QoS 1 through haproxy. Under that load one broker is killed, then the leading
// api, then Redis restarts, then a broker drains; each phase counts what the devices had
// acknowledged and Postgres does not hold, what a QoS 1 subscriber received twice, and
// how long the clients, the leader and the map take to come back.
import { setTimeout as wait } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { startHaproxy } from '../../apps/broker/test/haproxy.ts'
import type { BrokerProcess } from '../../apps/broker/test/broker-process.ts'
import {
  MapWatcher,
  brokerConnections,
  readiness,
  redeliveryCounter,
  startSim,
  waitFor,
} from './cluster-parts.ts'
import type { Readiness } from './cluster-parts.ts'
import { freePort } from './parts.ts'
import type { Parts, RedisServer } from './parts.ts'
import type { Attack } from './report.ts'

/** The stations of each simulated fleet (cluster-parts.ts startSim). */
const STATIONS = 20

interface Timing {
  drones: number
  /** Load before the fault, s. */
  warmS: number
  /** Longest wait for the clients, the leader and the map after the fault, s. */
  backS: number
  /** Load after everything is back, s. */
  afterS: number
}

class BrokerSlot {
  process!: BrokerProcess
  constructor(
    private readonly parts: Parts,
    readonly name: string,
    readonly env: Record<string, string>,
    readonly ports: { mqtt: number; ws: number; health: number },
  ) {}

  async start(): Promise<void> {
    // Restarted under the load of a whole fleet: it may be slow to come up.
    this.process = await this.parts.broker(this.env, 90_000)
  }

  kill(): Promise<number | null> {
    return this.process.stop('SIGKILL')
  }

  /** SIGTERM: the broker drains (BROKER_DRAIN_S) and exits. */
  drain(): Promise<number | null> {
    return this.process.stop('SIGTERM', 60_000)
  }
}

class ApiSlot {
  url = ''
  private child: { kill(signal: NodeJS.Signals): boolean; exitCode: number | null } | undefined
  constructor(
    private readonly parts: Parts,
    readonly env: Record<string, string>,
  ) {}

  async start(): Promise<void> {
    const api = await this.parts.apiProcess(this.env)
    this.url = api.url
    this.child = api.child
  }

  kill(): void {
    this.child?.kill('SIGKILL')
  }
}

interface Cluster {
  redis: RedisServer
  brokers: BrokerSlot[]
  apis: ApiSlot[]
  mqttUrl: string
  sql: Awaited<ReturnType<Parts['database']>>['sql']
}

async function startCluster(parts: Parts): Promise<Cluster> {
  const redis = await parts.persistentRedis()
  const brokers: BrokerSlot[] = []
  // The server names of deploy/haproxy.cfg.
  for (const name of ['broker', 'broker-2']) {
    const ports = { mqtt: await freePort(), ws: await freePort(), health: await freePort() }
    const env = {
      REDIS_URL: redis.url,
      BROKER_CLUSTER: 'chaos',
      MQTT_PORT: String(ports.mqtt),
      MQTT_WS_PORT: String(ports.ws),
      BROKER_METRICS_PORT: String(ports.health),
      BROKER_DRAIN_S: '5',
    }
    brokers.push(new BrokerSlot(parts, name, env, ports))
  }
  await Promise.all(brokers.map((b) => b.start()))
  const haproxy = await startHaproxy(Object.fromEntries(brokers.map((b) => [b.name, b.ports])))
  parts.defer(() => haproxy.stop())
  const mqttUrl = `mqtt://127.0.0.1:${haproxy.mqttPort}`
  const { url: databaseUrl, sql } = await parts.database()
  const apis: ApiSlot[] = []
  for (const id of ['api-1', 'api-2']) {
    apis.push(
      new ApiSlot(parts, {
        MQTT_URL: mqttUrl,
        DATABASE_URL: databaseUrl,
        API_INSTANCE_ID: id,
        LEADER_LEASE_S: '3',
        HTTP_PORT: String(await freePort()),
      }),
    )
  }
  // One after the other: the first takes the lease, the second follows.
  for (const api of apis) await api.start()
  await waitFor(async () => (await leader(apis)) !== undefined, 30_000, undefined, 'a ready leader')
  return { redis, brokers, apis, mqttUrl, sql }
}

/** The api that answers ready as the leader, if one does. */
async function leader(apis: ApiSlot[]): Promise<{ api: ApiSlot; ready: Readiness } | undefined> {
  for (const api of apis) {
    const ready = await readiness(api.url)
    if (ready?.ready === true && ready.role === 'leader') return { api, ready }
  }
  return undefined
}

/** Its MQTT connections as the api tells them: the command one, and the ingest's on the leader. */
async function apiConnections(apis: ApiSlot[]): Promise<number> {
  let n = 0
  for (const api of apis) {
    const r = (await readiness(api.url)) as
      (Readiness & { checks: Record<string, boolean> }) | undefined
    if (r === undefined) continue
    n += (r.checks.broker ? 1 : 0) + (r.role === 'leader' && r.checks.subscribed ? 1 : 0)
  }
  return n
}

interface Phase {
  name: string
  /** Inflicts the fault; `back` resolves once the clients, the leader and the map are back. */
  fault(c: Cluster, back: Promise<void>): Promise<void>
}

const PHASES: Phase[] = [
  {
    name: 'kill -9 a broker (restarted once its clients are back)',
    async fault(c, back) {
      await c.brokers[0]!.kill()
      await back
      await c.brokers[0]!.start()
    },
  },
  {
    name: 'kill -9 the leading api (restarted once a leader is back)',
    async fault(c, back) {
      const lead = await leader(c.apis)
      if (lead === undefined) throw new Error('no leader to kill')
      lead.api.kill()
      await back
      await lead.api.start()
    },
  },
  {
    name: 'restart Redis (stop, start on its append-only file)',
    async fault(c) {
      await c.redis.stop()
      await c.redis.start()
    },
  },
  {
    name: 'a broker drains (SIGTERM, BROKER_DRAIN_S=5), then starts again',
    async fault(c, back) {
      await c.brokers[1]!.drain()
      await back
      await c.brokers[1]!.start()
    },
  },
]

export interface PhaseResult {
  phase: string
  acked: { telemetry: number; events: number }
  stored: { telemetry: number; events: number }
  lost: number
  redelivered: number
  /** Seconds from the fault; null: never within the bound; 0 with `stayed`: never left. */
  clientsBackS: number | null
  clientsStayed: boolean
  leaderBackS: number | null
  leaderStayed: boolean
  mapBackS: number | null
  /** Messages in the ingest session's queue in Redis once the phase is over. */
  queuedForIngest: number
  /** Dead letters of the phase's fleet, by reason. */
  rejected: Record<string, number>
  /**
   * Telemetry missing between two stored points of a drone: seconds from the fault to the
   * point stored before each gap, and how many points the gap holds.
   */
  gaps: { afterFaultS: number; missing: number }[]
  /** Position changes seen on a follower's live stream during the phase. */
  followerChanges: number | undefined
}

async function runPhase(
  parts: Parts,
  c: Cluster,
  phase: Phase,
  index: number,
  t: Timing,
  signal: AbortSignal,
): Promise<PhaseResult> {
  const fleet = `cluster${index + 1}`
  const devices = t.drones + STATIONS
  const observer = await redeliveryCounter(parts, c.mqttUrl, fleet)
  const sim = await startSim(parts, c.mqttUrl, fleet, t.drones)
  const maps = await Promise.all(c.apis.map((api) => MapWatcher.open(parts, api.url, fleet)))
  const mapOf = (api: ApiSlot) => maps[c.apis.indexOf(api)]!
  const warmStart = Date.now()
  await sleep(t.warmS * 1000, signal)
  const firstLeader = await leader(c.apis)
  // Before the fault, the leader's map shows every drone moving.
  if (firstLeader !== undefined)
    await waitFor(() => mapOf(firstLeader.api).freshSince(warmStart) >= t.drones, 20_000).catch(
      () => {},
    )
  const metricsPorts = c.brokers.map((b) => b.ports.health)
  const deviceConnections = async () =>
    (await brokerConnections(metricsPorts)) - (await apiConnections(c.apis)) - 1 // the observer

  const faultAt = Date.now()
  const t0 = performance.now()
  const since = () => (performance.now() - t0) / 1000
  let clientsLeft = false
  let clientsBackS: number | null = null
  let leaderLeft = false
  let leaderBackS: number | null = null
  let mapBackS: number | null = null
  const watching = (async () => {
    while (since() < t.backS && !signal.aborted) {
      if (clientsBackS === null) {
        const n = await deviceConnections()
        if (n < devices) clientsLeft = true
        else clientsBackS = clientsLeft ? since() : 0
      }
      if (leaderBackS === null) {
        if ((await leader(c.apis)) === undefined) leaderLeft = true
        else leaderBackS = leaderLeft ? since() : 0
      }
      if (mapBackS === null && maps.some((m) => m.freshSince(faultAt) >= t.drones))
        mapBackS = since()
      if (clientsBackS !== null && leaderBackS !== null && mapBackS !== null) return
      await sleep(100, signal)
    }
  })()
  await phase.fault(c, watching)
  await watching
  await sleep(t.afterS * 1000, signal)

  const acked = await sim.stop()
  const count = async (table: string) =>
    Number(
      (
        await c.sql.unsafe(`SELECT count(*)::int AS n FROM ${table} WHERE fleet_id = $1`, [fleet])
      )[0]!.n,
    )
  const stored = { telemetry: 0, events: 0 }
  // The ingest drains: until everything acknowledged is stored, or nothing more comes for 10 s.
  let last = -1
  let lastChange = performance.now()
  for (;;) {
    stored.telemetry = await count('telemetry')
    stored.events = await count('drone_events')
    if (stored.telemetry >= acked.telemetryAcked && stored.events >= acked.eventsAcked) break
    const total = stored.telemetry + stored.events
    if (total !== last) [last, lastChange] = [total, performance.now()]
    if (performance.now() - lastChange > 10_000) break
    await sleep(250, signal)
  }
  // What the brokers keep for the ingest's session and have not handed over: the
  // persistent session's queue in Redis (aedes-persistence-redis), sent on its next connect.
  // The broker names a session by identity and client id (`service:…|skyline-api`),
  // URI-encoded in the key.
  const redis = new Redis(c.redis.url, { lazyConnect: true })
  const queued = await (async () => {
    const [key] = await redis.keys('chaos:outgoing:*skyline-api')
    return key === undefined ? 0 : redis.llen(key)
  })().finally(() => redis.disconnect())
  const gaps = await c.sql<{ ts: Date; missing: number }[]>`
    SELECT ts, (next - seq - 1)::int AS missing FROM (
      SELECT seq, ts, lead(seq) OVER (PARTITION BY drone_id ORDER BY seq) AS next
      FROM telemetry WHERE fleet_id = ${fleet}) s
    WHERE next > seq + 1 ORDER BY ts`
  // What the api refused of this fleet (dead letters), by reason: an acknowledged message
  // stored there is not lost, but it is not in telemetry either.
  const rejected = await c.sql<{ reason: string; n: number }[]>`
    SELECT reason, count(*)::int AS n FROM rejected_messages
    WHERE topic LIKE ${`fleet/${fleet}/%`} GROUP BY reason`
  const lastLeader = await leader(c.apis)
  const follower = c.apis.find((api) => api !== lastLeader?.api && api !== firstLeader?.api)
  for (const m of maps) m.close()
  return {
    phase: phase.name,
    acked: { telemetry: acked.telemetryAcked, events: acked.eventsAcked },
    stored,
    lost:
      Math.max(0, acked.telemetryAcked - stored.telemetry) +
      Math.max(0, acked.eventsAcked - stored.events),
    redelivered: observer.redelivered(),
    queuedForIngest: queued,
    rejected: Object.fromEntries(rejected.map((r) => [r.reason, r.n])),
    gaps: gaps.map((g) => ({
      afterFaultS: (g.ts.getTime() - faultAt) / 1000,
      missing: g.missing,
    })),
    clientsBackS,
    clientsStayed: !clientsLeft,
    leaderBackS,
    leaderStayed: !leaderLeft,
    mapBackS,
    followerChanges: follower === undefined ? undefined : mapOf(follower).changes,
  }
}

const sleep = (ms: number, signal: AbortSignal) => wait(ms, undefined, { signal })

const int = (n: number) => n.toLocaleString('en-US')
const secs = (s: number | null, stayed: boolean, bound: number) =>
  s === null ? `not within ${bound} s` : stayed ? 'never left' : `${s.toFixed(1)} s`

/** The phases as Markdown, for the terminal and the README alike. */
export function clusterTable(rows: PhaseResult[], t: Timing): string {
  return [
    `Cluster: ${int(t.drones)} drones + ${STATIONS} stations (QoS 1 telemetry at 1 Hz, QoS 1 events) through haproxy to 2 brokers on Redis, 2 apis (LEADER_LEASE_S=3) on one Postgres`,
    '',
    '| phase | acknowledged to the devices (telemetry + events) | lost | received twice by a QoS 1 subscriber | clients back in | leader back in | map back in |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.phase} | ${int(r.acked.telemetry)} + ${int(r.acked.events)} | ${int(r.lost)} | ${int(r.redelivered)} | ${secs(r.clientsBackS, r.clientsStayed, t.backS)} | ${secs(r.leaderBackS, r.leaderStayed, t.backS)} | ${r.mapBackS === null ? `not within ${t.backS} s` : `${r.mapBackS.toFixed(1)} s`} |`,
    ),
  ].join('\n')
}

export const cluster: Attack = {
  name: 'cluster',
  async run(parts, { quick, signal }) {
    const t: Timing = quick
      ? { drones: 200, warmS: 5, backS: 30, afterS: 5 }
      : { drones: 1_000, warmS: 10, backS: 45, afterS: 10 }
    const c = await startCluster(parts)
    const results: PhaseResult[] = []
    let failure: string | undefined
    for (const [i, phase] of PHASES.entries()) {
      if (signal.aborted) break
      console.error(`  cluster: ${phase.name}`)
      try {
        results.push(await runPhase(parts, c, phase, i, t, signal))
      } catch (err) {
        // The phases done so far still make a table.
        failure = `${phase.name}: ${(err as Error).message}`
        break
      }
      console.error(`    ${JSON.stringify(results.at(-1))}`)
    }
    const lost = results.reduce((n, r) => n + r.lost, 0)
    const frozen = results.filter((r) => r.followerChanges === 0).length
    return {
      attack: `cluster: ${int(t.drones)} drones at QoS 1 through haproxy, 2 brokers on Redis, 2 apis; a broker killed, the leader killed, Redis restarted, a broker drained`,
      expected: 'nothing acknowledged is lost; clients, leader and map back within seconds',
      happened: [
        `${int(lost)} lost over ${results.length} phases`,
        `${int(results.reduce((n, r) => n + r.redelivered, 0))} received twice by a QoS 1 subscriber`,
        ...(failure === undefined ? [] : [`stopped at ${failure}`]),
        ...(frozen > 0
          ? [`a follower's map got no position in ${frozen} of ${results.length} phases`]
          : []),
      ].join('; '),
      lost,
      detail: clusterTable(results, t),
    }
  },
}
