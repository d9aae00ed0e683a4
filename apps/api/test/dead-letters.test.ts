import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { MqttClient } from 'mqtt'
import { eq } from 'drizzle-orm'
import { rejectedMessages, telemetry } from '../src/db/schema.ts'
import type { Database } from '../src/db/client.ts'
import type { IngestItem } from '../src/ingest/items.ts'
import { DATABASES, WAIT, buildApi, connectDrone, startBroker, telemetryAt } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Issue #4 through the real broker: a message the schema accepts but Postgres refuses, and
// bad messages delivered more than once.
const TOPIC = 'fleet/f1/drones/d1/telemetry'
/** Passes the schema (any safe integer) but not the `integer` column: SQLSTATE 22003. */
const TOO_BIG_SEQ = 2 ** 31

/** An hour ago: within the telemetry kept (TELEMETRY_RETENTION_DAYS). */
const BASE_TS = Date.now() - 3_600_000
const point = (seq: number, ts = BASE_TS + seq) => JSON.stringify(telemetryAt(ts, seq))

describe.each(DATABASES)('dead letters on %s', (_name, open) => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance | undefined
  let drone: MqttClient | undefined

  // The api and the drone start in each test, under its longer timeout: a loaded machine
  // can take most of the hook's 10 s to open PGlite alone.
  beforeEach(async () => {
    broker = await startBroker()
    database = await open()
  })
  afterEach(async () => {
    await drone?.endAsync()
    await api?.close()
    drone = api = undefined
    await database.close()
    await broker.close()
  })
  const start = async () => {
    api = await buildApi(broker.url, database)
    drone = await connectDrone(broker.url, 'd1')
    return { api, drone }
  }

  const dead = () => database.db.select().from(rejectedMessages).orderBy(rejectedMessages.id)
  const seqs = async () =>
    (
      await database.db
        .select({ seq: telemetry.seq })
        .from(telemetry)
        .where(eq(telemetry.droneId, 'd1'))
    )
      .map((r) => r.seq)
      .sort((a, b) => a - b)
  const metric = async (name: string) => {
    const body = (await api!.inject({ method: 'GET', url: '/metrics' })).body
    return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(body)?.[1])
  }

  it('dead-letters a message the database refuses, and stores the rest of its batch', async () => {
    const { api, drone } = await start()
    // Published together, so that the bad one shares its batch with good ones.
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        drone.publishAsync(TOPIC, point(i === 7 ? TOO_BIG_SEQ : i), { qos: 1 }),
      ),
    )
    await vi.waitFor(async () => expect(await dead()).toHaveLength(1), WAIT)
    const [letter] = await dead()
    expect(letter).toMatchObject({ topic: TOPIC })
    expect(letter!.reason).toMatch(/^write_refused: 22003 .*out of range for type integer/)
    expect(letter!.excerpt).toContain(`"seq":${TOO_BIG_SEQ}`)
    const good = Array.from({ length: 20 }, (_, i) => i).filter((i) => i !== 7)
    await vi.waitFor(async () => expect(await seqs()).toEqual(good), WAIT)

    // Nothing stalls behind it: the next message goes in and the ingest is healthy.
    await drone.publishAsync(TOPIC, point(20), { qos: 1 })
    await vi.waitFor(async () => expect(await seqs()).toContain(20), WAIT)
    expect(api.ingest.batcher.isHealthy).toBe(true)
    expect((await api.inject({ method: 'GET', url: '/api/ready' })).statusCode).toBe(200)
    expect(await metric('skyline_ingest_refused_total')).toBe(1)
  })

  it('stores a bad message once however often it arrives', async () => {
    const { drone } = await start()
    const undecodable = '{"v":1,"ts":'
    const refused = point(TOO_BIG_SEQ)
    for (const payload of [undecodable, refused, undecodable, refused])
      await drone.publishAsync(TOPIC, payload, { qos: 1 })
    await drone.publishAsync(TOPIC, point(1), { qos: 1 })
    await vi.waitFor(async () => expect(await seqs()).toEqual([1]), WAIT)
    await vi.waitFor(
      async () => expect(await metric('skyline_ingest_rejected_total')).toBe(4),
      WAIT,
    )
    expect((await dead()).map((r) => r.reason.split(':')[0])).toEqual([
      'invalid_json',
      'write_refused',
    ])
    expect(await metric('skyline_ingest_lost_total')).toBe(0)
  })

  it('stores a bad QoS 1 message once when it is redelivered after its PUBACK was lost', async () => {
    const { api, drone } = await start()
    // The api loses its connection right after the commit, before the PUBACK goes out:
    // what a crash between the two does. The broker redelivers on the same session.
    const client = api.mqtt.client
    const committed = api.live.committed.bind(api.live)
    let cut = false
    api.live.committed = (items: IngestItem[]) => {
      committed(items)
      if (!cut && items.some((i) => i.kind === 'rejected')) {
        cut = true
        client.stream.destroy()
      }
    }
    await drone.publishAsync(TOPIC, '{"v":1,"ts":', { qos: 1 })
    await vi.waitFor(() => expect(api.ingest.ingest.received).toBe(2), WAIT)
    await vi.waitFor(() => expect(api.ingest.batcher.buffered).toBe(0), WAIT)
    expect(cut).toBe(true)
    expect(await dead()).toHaveLength(1)
    expect(await metric('skyline_ingest_lost_total')).toBe(0)
  })
})
