import { randomBytes } from 'node:crypto'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import Fastify from 'fastify'
import { afterAll, afterEach, beforeAll, expect, inject, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { connectAsync } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import type { Packet } from 'mqtt-packet'
import type { MqttClient } from 'mqtt'
import postgres from 'postgres'
import { sql } from 'drizzle-orm'
import { signedTokens } from '@skyline/drone-sim'
import type { FleetOptions } from '@skyline/drone-sim'
import type { Telemetry } from '@skyline/schemas'
import { fleetOptions as simFleetOptions } from '../../drone-sim/test/helpers.ts'
import { signDeviceToken } from '@skyline/auth'
import { createBroker, startListeners } from '@skyline/broker'
import type { BrokerOptions, SkylineBroker } from '@skyline/broker'
import app, { loggerOptions, serverOptions } from '../src/app.ts'
import type { Authenticate } from '../src/auth/authenticate.ts'
import { loadConfig } from '../src/config.ts'
import type { ApiConfig } from '../src/config.ts'
import { openDatabase } from '../src/db/client.ts'
import type { Database, Db } from '../src/db/client.ts'
import { rowsOf } from '../src/db/partitions.ts'
import { DeliveryChanges } from '../src/delivery/changes.ts'
import { DeliveryLifecycle } from '../src/delivery/lifecycle.ts'
import type { SendCommand } from '../src/delivery/lifecycle.ts'
// The keys inject() reads here are declared where they are provided.
import type {} from './database-templates.ts'

export const SECRET = 'api-test-secret-at-least-32-characters'

/**
 * A new data directory holding an empty, migrated PGlite database: a copy of the template
 * the project's globalSetup made once for the run (database-templates.ts). Creating and
 * migrating one takes about 6 s, copying and opening a migrated one about 1 s. In a
 * project without that globalSetup, each test process migrates a template of its own.
 */
export async function pgliteDataDir(): Promise<string> {
  const template = inject('pgliteTemplate') ?? (await ownPgliteTemplate())
  const dataDir = mkdtempSync(join(tmpdir(), 'skyline-api-'))
  cpSync(template, dataDir, { recursive: true })
  return dataDir
}

/** A new, empty PGlite database (pgliteDataDir), removed again on close. */
export async function freshPglite(): Promise<Database> {
  const dataDir = await pgliteDataDir()
  const database = await openDatabase({ dataDir })
  return {
    ...database,
    async close() {
      await database.close()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

let pgliteTemplate: Promise<string> | undefined
const ownPgliteTemplate = () =>
  (pgliteTemplate ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skyline-pglite-template-'))
    await (await openDatabase({ dataDir: dir })).close()
    return dir
  })())

/** The databases every api test runs against: PGlite always, Postgres when DATABASE_URL is set. */
export const DATABASES: [string, () => Promise<Database>][] = [['PGlite', () => freshPglite()]]
const url = process.env.DATABASE_URL
if (url !== undefined && url !== '') DATABASES.push(['Postgres', () => freshPostgres(url)])

/**
 * A new, empty database on the Postgres server, dropped again on close: a copy of the
 * migrated template of the run (database-templates.ts) where there is one, else migrated.
 */
export async function freshPostgres(
  serverUrl: string,
): Promise<Database & { name: string; url: string }> {
  const name = `skyline_test_${randomBytes(5).toString('hex')}`
  const template = inject('postgresTemplate') ?? ''
  const admin = postgres(serverUrl, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE ${name}${template === '' ? '' : ` TEMPLATE ${template}`}`)
  const dbUrl = new URL(serverUrl)
  dbUrl.pathname = `/${name}`
  let database: Database
  try {
    database = await openDatabase({ url: dbUrl.toString(), dataDir: '' })
  } catch (err) {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
    throw err
  }
  return {
    ...database,
    name,
    url: dbUrl.toString(),
    async close() {
      await database.close()
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin.end()
    },
  }
}

export interface TestBroker {
  url: string
  broker: SkylineBroker
  close(): Promise<void>
}

export async function startBroker(options: Partial<BrokerOptions> = {}): Promise<TestBroker> {
  const broker = await createBroker({ tokenSecret: SECRET, rateLimit: null, ...options })
  const listening = await startListeners(broker, { host: '127.0.0.1', mqttPort: 0 })
  return {
    url: `mqtt://127.0.0.1:${listening.mqtt.port}`,
    broker,
    close: () => listening.close(),
  }
}

/** The api wired to a real broker and database, with no HTTP port (requests go through inject). */
export async function buildApi(
  brokerUrl: string,
  database: Database,
  env: Record<string, string> = {},
  o: {
    authenticate?: Authenticate
    logStream?: { write(line: string): void }
    /** The app's clock (lifecycle, dispatcher, zones); default the system's. */
    now?: () => Date
  } = {},
): Promise<FastifyInstance> {
  const config: ApiConfig = loadConfig({
    MQTT_URL: brokerUrl,
    LOG_LEVEL: 'silent',
    INGEST_BATCH_DELAY_MS: '20',
    // The test fleets fly time-scaled (testFleet): their clocks run hours ahead.
    DEVICE_CLOCK_AHEAD_MAX_S: String(30 * 86_400),
    // Tests post and fail sign-ins faster than any client: the limits are limits.test.ts's.
    RATE_LIMIT_WRITES_PER_MIN: '1000000',
    RATE_LIMIT_AUTH_FAILURES_PER_MIN: '1000000',
    ...env,
  })
  const fastify = Fastify({
    ...serverOptions(config),
    logger: {
      ...loggerOptions(config.LOG_LEVEL),
      ...(o.logStream !== undefined && { stream: o.logStream }),
    },
  })
  await fastify.register(app, {
    config,
    database,
    tokenSecret: SECRET,
    ...(o.authenticate !== undefined && { authenticate: o.authenticate }),
    ...(o.now !== undefined && { now: o.now }),
  })
  await fastify.ready()
  // The leader once subscribed; another api on the same database is a follower.
  await vi.waitFor(() => {
    expect(fastify.leadership.decided).toBe(true)
    if (fastify.leadership.role === 'leader') expect(fastify.mqtt.subscribed).toBe(true)
    else expect(fastify.mqtt.connected).toBe(true)
  }, WAIT)
  return fastify
}

let everyFleet: Promise<string> | undefined
/**
 * `Bearer <token>` of a service token minted without a fleet: it reads and operates
 * every fleet, what the tests that are not about access go with (issue 16).
 */
export const operatorOfEveryFleet = async (): Promise<string> =>
  `Bearer ${await (everyFleet ??= signDeviceToken(SECRET, { role: 'service', sub: 'tests' }))}`

/** `Bearer <token>` of a device token with these claims. */
export const bearer = async (claims: Parameters<typeof signDeviceToken>[1]): Promise<string> =>
  `Bearer ${await signDeviceToken(SECRET, claims)}`

/** GET `url` from the api, signed in as `authorization` (default: every fleet's operator). */
export async function get(api: FastifyInstance, url: string, authorization?: string) {
  return api.inject({
    method: 'GET',
    url,
    headers: { authorization: authorization ?? (await operatorOfEveryFleet()) },
  })
}

/**
 * The live stream's sign-in message (its first): `token` is a bare token or
 * `Bearer <token>`; default every fleet's operator.
 */
export async function liveAuth(token?: string): Promise<string> {
  const t = (token ?? (await operatorOfEveryFleet())).replace(/^Bearer /, '')
  return JSON.stringify({ type: 'auth', token: t })
}

/**
 * The bound for `vi.waitFor` (10 s, checked every 25 ms), for state that only shows
 * through the database or REST, which have no event to wait on. Give it to every wait:
 * vi.waitFor's own default is 1 s, too short for a loaded CI machine.
 */
export const WAIT = { timeout: 10_000, interval: 25 }

/** A real MQTT client signed in as drone `id` of fleet f1 (client id = id). */
export async function connectDrone(
  brokerUrl: string,
  id: string,
  o: { will?: object } = {},
): Promise<MqttClient> {
  return connectAsync(brokerUrl, {
    clientId: id,
    username: id,
    password: await signDeviceToken(SECRET, { role: 'drone', sub: id, fleet: 'f1' }),
    ...(o.will !== undefined && {
      // Its connection dropped is its end: the will stands.
      reconnectPeriod: 0,
      will: {
        topic: `fleet/f1/drones/${id}/status`,
        payload: Buffer.from(JSON.stringify(o.will)),
        qos: 1 as const,
        retain: true,
      },
    }),
  })
}

/**
 * A small simulated fleet `f1` around Paris for the test broker (the simulator's own
 * test fleet, signed with this file's secret); a test overrides what it is about.
 */
export const testFleet = (url: string, o: Partial<FleetOptions> = {}): FleetOptions =>
  simFleetOptions(url, {
    fleetId: 'f1',
    timeScale: 20,
    keepaliveS: 5,
    seed: 5,
    tokens: signedTokens(SECRET),
    ...o,
  })

/**
 * Records the MQTT packets written to `stream`, write by write, as `cmd messageId`
 * (one array per write that held whole packets). A packet written in pieces (mqtt.js
 * writes some that way) is not whole in any one write and is left out.
 */
export function recordWrites(stream: Duplex): string[][] {
  const writes: string[][] = []
  const write = stream.write.bind(stream)
  stream.write = ((chunk: Buffer, ...rest: never[]) => {
    const packets: string[] = []
    const parser = mqttPacket.parser()
    parser.on('packet', (p: Packet) => packets.push(`${p.cmd} ${p.messageId}`))
    parser.on('error', () => {})
    parser.parse(chunk)
    if (packets.length > 0) writes.push(packets)
    return write(chunk, ...rest)
  }) as typeof stream.write
  return writes
}

/** A valid telemetry payload of the contract at `ts`, the rest fixed (as the schema's units). */
export const telemetryAt = (ts: number, seq = 1): Telemetry => ({
  v: 1,
  ts,
  seq,
  lat: 48.85,
  lon: 2.35,
  altM: 50,
  speedMps: 10,
  headingDeg: 90,
  batteryPct: 80,
  state: 'en_route',
})

/**
 * A drone of fleet f1 streaming QoS 1 telemetry every `everyMs`, seq 1, 2, …: how many
 * it has sent, and `stop()`, which resolves once the broker acknowledged every one.
 */
export function streamTelemetry(drone: MqttClient, id: string, everyMs: number) {
  let sent = 0
  const published: Promise<unknown>[] = []
  const timer = setInterval(() => {
    sent++
    const message = JSON.stringify(telemetryAt(Date.now(), sent))
    published.push(drone.publishAsync(`fleet/f1/drones/${id}/telemetry`, message, { qos: 1 }))
  }, everyMs)
  return {
    get sent() {
      return sent
    },
    async stop() {
      clearInterval(timer)
      await Promise.all(published)
    },
  }
}

/** A drone's stored telemetry: rows, distinct seqs, the latest point's time (ms). */
export async function storedTelemetry(
  db: Db,
  droneId: string,
): Promise<{ n: number; seqs: number; lastMs: number }> {
  const [row] = rowsOf<{ n: number; seqs: number; last: string | null }>(
    await db.execute(sql`
      SELECT count(*)::int AS n, count(DISTINCT seq)::int AS seqs, max(ts)::text AS last
      FROM telemetry WHERE drone_id = ${droneId}`),
  )
  return { n: row!.n, seqs: row!.seqs, lastMs: row!.last === null ? 0 : Date.parse(row!.last) }
}

/**
 * The delivery lifecycle on its own, as the ingest's writer and the tests of its rules
 * use it: commands go to `send` (none by default), changes to `changes`.
 */
export function lifecycleOn(
  db: Db,
  o: { send?: SendCommand; now?: () => Date; changes?: DeliveryChanges } = {},
): DeliveryLifecycle {
  const changes =
    o.changes ??
    new DeliveryChanges((err) => {
      throw err
    })
  return new DeliveryLifecycle(db, changes, o.send ?? (async () => {}), { warn: () => {} }, o.now)
}

/** A station row of `fleetId` near Paris, online, as the tests insert them directly. */
export const stationRow = (fleetId: string, id: string, lat: number, statusAt: Date) => ({
  fleetId,
  id,
  name: id,
  lat,
  lon: 2.35,
  capacity: 2,
  online: true,
  statusAt,
})

/**
 * For a test file of the api's configuration: one broker and one PGlite for the file,
 * and `start(env)` builds an api on them, closed after its test.
 */
export function apiPerTest(): (env?: Record<string, string>) => Promise<FastifyInstance> {
  let broker: TestBroker | undefined
  let database: Database | undefined
  const built: FastifyInstance[] = []
  beforeAll(async () => {
    broker = await startBroker()
    database = await DATABASES[0]![1]()
  })
  afterEach(async () => {
    for (const api of built.splice(0)) await api.close()
  })
  afterAll(async () => {
    await database?.close()
    await broker?.close()
  })
  return async (env = {}) => {
    const api = await buildApi(broker!.url, database!, env)
    built.push(api)
    return api
  }
}

/** A closed square ring of side `d` degrees, its south-west corner at (lat, lon): `[lon, lat]` pairs. */
export const square = (lat: number, lon: number, d = 0.01): [number, number][] => [
  [lon, lat],
  [lon + d, lat],
  [lon + d, lat + d],
  [lon, lat + d],
  [lon, lat],
]
