import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { Fleet } from '@skyline/drone-sim'
import type { FleetOptions } from '@skyline/drone-sim'
import { count, eq } from 'drizzle-orm'
import { droneEvents, drones, rejectedMessages, telemetry } from '../src/db/schema.ts'
import type { Database } from '../src/db/client.ts'
import {
  DATABASES,
  WAIT,
  buildApi,
  connectDrone,
  get as getAs,
  recordWrites,
  startBroker,
  telemetryAt,
  testFleet,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'

const fleetOptions = (url: string, o: Partial<FleetOptions> = {}): FleetOptions =>
  testFleet(url, { drones: 3, patrol: true, keepaliveS: 2, seed: 3, ...o })

describe.each(DATABASES)('ingest into %s', (_name, open) => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance | undefined
  const cleanup: (() => Promise<void>)[] = []

  beforeEach(async () => {
    broker = await startBroker()
    database = await open()
  })
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
    await api?.close()
    api = undefined
    await database.close()
    await broker.close()
  })

  /** `total` QoS 1 events from drone `droneId`, all at once; resolves on their PUBACKs. */
  const publishEvents = async (droneId: string, total: number) => {
    const drone = await connectDrone(broker.url, droneId)
    cleanup.push(() => drone.endAsync())
    await Promise.all(
      Array.from({ length: total }, (_, i) =>
        drone.publishAsync(
          `fleet/f1/drones/${droneId}/events`,
          JSON.stringify({ v: 1, ts: Date.now(), id: `e-${i}`, type: 'battery.low' }),
          { qos: 1 },
        ),
      ),
    )
  }

  const get = async <T>(url: string) => {
    const res = await getAs(api!, url)
    expect(res.statusCode, res.body).toBe(200)
    return res.json<T>()
  }

  it('stores a simulated fleet: drones, stations, positions and tracks, with no telemetry lost', async () => {
    api = await buildApi(broker.url, database)
    const fleet = await Fleet.start(fleetOptions(broker.url))
    cleanup.push(() => fleet.stop())

    const { drones } = await vi.waitFor(async () => {
      const body = await get<{
        drones: { id: string; online: boolean; position: unknown; lastSeq: number }[]
      }>('/api/drones')
      expect(body.drones.map((d) => d.id)).toEqual(['drone-1', 'drone-2', 'drone-3'])
      expect(body.drones.every((d) => d.online && d.position !== null && d.lastSeq >= 10)).toBe(
        true,
      )
      return body
    }, WAIT)
    expect(drones).toHaveLength(3)
    const { stations } = await get<{
      stations: { id: string; online: boolean; docked: string[] }[]
    }>('/api/stations')
    expect(stations.map((s) => [s.id, s.online])).toEqual([
      ['station-1', true],
      ['station-2', true],
    ])

    // Every seq from the first to the last stored is there: nothing lost, nothing twice.
    const track = await get<{ points: { seq: number; lat: number }[] }>(
      '/api/drones/drone-1/track?fleet=f1',
    )
    const seqs = track.points.map((p) => p.seq)
    expect(seqs.length).toBeGreaterThan(5)
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i))

    const geo = await getAs(api, '/api/drones/drone-1/track?format=geojson')
    expect(geo.headers['content-type']).toMatch(/application\/geo\+json/)
    const feature = geo.json<{ geometry: { type: string; coordinates: number[][] } }>()
    expect(feature.geometry.type).toBe('LineString')
    expect(feature.geometry.coordinates.length).toBeGreaterThanOrEqual(seqs.length)
    const gpx = await getAs(api, '/api/drones/drone-1/track?format=gpx')
    expect(gpx.headers['content-type']).toMatch(/application\/gpx\+xml/)
    expect(gpx.body.match(/<trkpt /g)?.length).toBeGreaterThanOrEqual(seqs.length)
  })

  it('marks a drone offline from its last will within keepalive x 1.5 + 1 s', async () => {
    api = await buildApi(broker.url, database)
    const fleet = await Fleet.start(
      fleetOptions(broker.url, { drones: 1, keepaliveS: 2, patrol: false }),
    )
    cleanup.push(() => fleet.stop())
    await vi.waitFor(
      async () => expect((await get<{ online: boolean }>('/api/drones/drone-1')).online).toBe(true),
      WAIT,
    )

    const started = Date.now()
    fleet.drones[0]!.connection!.client.stream.destroy()
    const offline = await vi.waitFor(
      async () => {
        const d = await get<{ online: boolean; state: string; offlineReason: string | null }>(
          '/api/drones/drone-1',
        )
        expect(d.online).toBe(false)
        return d
      },
      { timeout: 2 * 1.5 * 1000 + 1000, interval: 25 },
    )
    expect(offline).toMatchObject({ state: 'offline', offlineReason: 'connection_lost' })
    expect(Date.now() - started).toBeLessThan(2 * 1.5 * 1000 + 1000)
  })

  it('does not count a last will as hearing the drone: lastSeenAt stays its last message', async () => {
    api = await buildApi(broker.url, database)
    const drone = await connectDrone(broker.url, 'd9', {
      will: { v: 1, ts: Date.now(), online: false, state: 'offline', reason: 'connection_lost' },
    })
    cleanup.push(() => drone.endAsync(true))
    await drone.publishAsync(
      'fleet/f1/drones/d9/status',
      JSON.stringify({ v: 1, ts: Date.now(), online: true, state: 'idle' }),
      { qos: 1 },
    )
    type Seen = { online: boolean; lastSeenAt: string | null; onlineChangedAt: string | null }
    const heard = await vi.waitFor(async () => {
      const d = await get<Seen>('/api/drones/d9')
      expect(d.online).toBe(true)
      return d
    }, WAIT)

    drone.stream.destroy() // no DISCONNECT: the broker sends the will
    const gone = await vi.waitFor(async () => {
      const d = await get<Seen>('/api/drones/d9')
      expect(d.online).toBe(false)
      return d
    }, WAIT)
    expect(gone.lastSeenAt).toBe(heard.lastSeenAt)
    expect(Date.parse(gone.onlineChangedAt!)).toBeGreaterThan(Date.parse(heard.lastSeenAt!))
  })

  it('marks an online drone that went silent as stale, and clears it when it speaks again', async () => {
    api = await buildApi(broker.url, database, { STALE_AFTER_S: '1' })
    const drone = await connectDrone(broker.url, 'd8')
    cleanup.push(() => drone.endAsync())
    const telemetryOf = (seq: number) =>
      JSON.stringify({
        v: 1,
        ts: Date.now(),
        seq,
        lat: 48.85,
        lon: 2.35,
        altM: 0,
        speedMps: 0,
        headingDeg: 0,
        batteryPct: 90,
        state: 'idle',
      })
    await drone.publishAsync(
      'fleet/f1/drones/d8/status',
      JSON.stringify({ v: 1, ts: Date.now(), online: true, state: 'idle' }),
      { qos: 1, retain: true },
    )
    await drone.publishAsync('fleet/f1/drones/d8/telemetry', telemetryOf(0), { qos: 1 })
    // Still connected, so no will: only the sweep can tell.
    await vi.waitFor(async () => {
      const [row] = await database.db
        .select({ state: drones.state })
        .from(drones)
        .where(eq(drones.id, 'd8'))
      expect(row?.state).toBe('stale')
    }, WAIT)
    expect((await get<{ state: string; online: boolean }>('/api/drones/d8')).state).toBe('stale')
    await drone.publishAsync('fleet/f1/drones/d8/telemetry', telemetryOf(1), { qos: 1 })
    await vi.waitFor(
      async () => expect((await get<{ state: string }>('/api/drones/d8')).state).toBe('idle'),
      WAIT,
    )
  })

  it('rejects and records invalid payloads while valid ones keep flowing', async () => {
    api = await buildApi(broker.url, database)
    const drone = await connectDrone(broker.url, 'd9')
    cleanup.push(() => drone.endAsync())
    const topic = 'fleet/f1/drones/d9/telemetry'
    const valid = (seq: number) => JSON.stringify(telemetryAt(Date.now(), seq))
    await drone.publishAsync(topic, valid(0), { qos: 1 })
    await drone.publishAsync(topic, '{"v":1,"ts":', { qos: 1 })
    await drone.publishAsync(
      topic,
      JSON.stringify({
        v: 1,
        ts: Date.now(),
        seq: 1,
        lat: 123,
        lon: 2,
        altM: 1,
        speedMps: 1,
        headingDeg: 1,
        batteryPct: 1,
        state: 'idle',
      }),
      { qos: 1 },
    )
    await drone.publishAsync(topic, Buffer.from([0xff, 0xfe, 0x00]), { qos: 1 })
    await drone.publishAsync(topic, valid(2), { qos: 1 })

    // The valid message after the bad ones is stored: the ingest carried on.
    await vi.waitFor(async () => {
      const stored = await database.db
        .select({ seq: telemetry.seq })
        .from(telemetry)
        .where(eq(telemetry.droneId, 'd9'))
      expect(stored.map((r) => r.seq).sort()).toEqual([0, 2])
    }, WAIT)
    const rejected = await database.db.select().from(rejectedMessages).orderBy(rejectedMessages.id)
    expect(rejected.map((r) => r.reason.split(':')[0])).toEqual([
      'invalid_json',
      'invalid_payload',
      'invalid_utf8',
    ])
    expect(rejected[1]!.reason).toMatch(/lat/)
    expect(rejected.every((r) => r.topic === topic && r.sizeBytes > 0)).toBe(true)
    const stats = await get<{ ingest: { rejected: number; rejectedStored: number } }>('/api/stats')
    expect(stats.ingest).toMatchObject({ rejected: 3, rejectedStored: 3 })
    expect((await api.inject({ method: 'GET', url: '/api/health' })).statusCode).toBe(200)
    const metrics = (await api.inject({ method: 'GET', url: '/metrics' })).body
    expect(metrics).toMatch(/^skyline_ingest_rejected_total 3$/m)
    expect(metrics).toMatch(/^skyline_ingest_messages_total\{kind="telemetry"\} 2$/m)
    expect(metrics).toMatch(/^skyline_ingest_batch_size_count [1-9]/m)
    expect(metrics).toMatch(/^skyline_db_write_seconds_count [1-9]/m)
  })

  it('writes QoS 1 messages in batches, not one transaction each', async () => {
    api = await buildApi(broker.url, database)
    const total = 500
    await publishEvents('d6', total)
    await vi.waitFor(async () => {
      const [row] = await database.db.select({ n: count() }).from(droneEvents)
      expect(row!.n).toBe(total)
    }, WAIT)
    const metrics = (await api.inject({ method: 'GET', url: '/metrics' })).body
    const batches = Number(/^skyline_ingest_batch_size_count (\d+)$/m.exec(metrics)?.[1])
    expect(batches).toBeLessThan(total / 5)
  })

  it('acknowledges the QoS 1 messages of a commit together, each once, in order', async () => {
    api = await buildApi(broker.url, database)
    // The PUBACKs the api writes to the broker, write by write.
    const writes = recordWrites(api.mqtt.client.stream)
    const pubacks = () =>
      writes.map((w) => w.filter((p) => p.startsWith('puback '))).filter((w) => w.length > 0)
    const ackedIds = () => pubacks().flatMap((w) => w.map((p) => Number(p.split(' ')[1])))
    const total = 400
    await publishEvents('d8', total)
    await vi.waitFor(() => expect(ackedIds()).toHaveLength(total), WAIT)
    // aedes numbers its deliveries to a client one up from a random start (65,535 wraps
    // to 1): they are acknowledged in that order, each once.
    const acked = ackedIds()
    const first = acked[0]!
    expect(acked).toEqual(Array.from({ length: total }, (_, i) => ((first - 1 + i) % 65_535) + 1))
    // A batch's messages settle together, so their PUBACKs leave in one write.
    const metrics = (await api.inject({ method: 'GET', url: '/metrics' })).body
    const batches = Number(/^skyline_ingest_batch_size_count (\d+)$/m.exec(metrics)?.[1])
    expect(pubacks().length).toBeLessThanOrEqual(batches)
    const [row] = await database.db.select({ n: count() }).from(droneEvents)
    expect(row!.n).toBe(total)
  })

  it('loses and duplicates no QoS 1 event when the ingest restarts mid-stream', async () => {
    api = await buildApi(broker.url, database)
    const drone = await connectDrone(broker.url, 'd7')
    cleanup.push(() => drone.endAsync())
    const total = 300
    const publishing = (async () => {
      for (let i = 0; i < total; i++) {
        const event = {
          v: 1,
          ts: Date.now(),
          id: `ev-${i}`,
          type: 'battery.low',
          detail: String(i),
        }
        await drone.publishAsync('fleet/f1/drones/d7/events', JSON.stringify(event), { qos: 1 })
      }
    })()
    // Stop the api once a third is stored, while the drone keeps publishing.
    await vi.waitFor(async () => {
      const [row] = await database.db.select({ n: count() }).from(droneEvents)
      expect(row!.n).toBeGreaterThanOrEqual(total / 3)
    }, WAIT)
    await api.close()
    api = undefined
    await publishing
    // The same session comes back and the broker redelivers what was not acknowledged.
    api = await buildApi(broker.url, database)
    const n = await vi.waitFor(async () => {
      const [row] = await database.db.select({ n: count() }).from(droneEvents)
      expect(row!.n).toBe(total)
      return row!.n
    }, WAIT)
    expect(n).toBe(total)
  })
})
