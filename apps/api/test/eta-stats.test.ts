import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { MqttClient } from 'mqtt'
import { eq } from 'drizzle-orm'
import { deliveries, drones, stations } from '../src/db/schema.ts'
import type { Database } from '../src/db/client.ts'
import {
  DATABASES,
  WAIT,
  buildApi,
  connectDrone,
  get,
  startBroker,
  telemetryAt,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'

/** Metres per degree of latitude (the api's Earth radius): along a meridian, exact. */
const M_PER_DEG = (6_371_008.8 * Math.PI) / 180
const DROPOFF = { lat: 48.9, lon: 2.35 }
const S = 1000
/** The flights' drone clock starts here (a minute ago: inside the device-clock window). */
const T0 = Math.floor(Date.now() / S) * S - 60 * S

interface Point {
  /** Seconds since take-off, remaining metres, ground speed m/s. */
  t: number
  remainingM: number
  speedMps: number
}

/** A straight flight at `mps` from `fromM` out, one point every `everyS`, up to `untilS`. */
const steady = (fromS: number, fromM: number, mps: number, everyS: number, untilS: number) =>
  Array.from({ length: Math.floor((untilS - fromS) / everyS) + 1 }, (_, i) => ({
    t: fromS + i * everyS,
    remainingM: fromM - mps * i * everyS,
    speedMps: mps,
  }))

interface Horizon {
  horizon: string
  deliveries: number
  meanAbsErrorS: number | null
  p90AbsErrorS: number | null
}

describe.each(DATABASES)('ETA horizons through the ingest on %s', (_name, open) => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance
  const clients: MqttClient[] = []

  beforeEach(async () => {
    broker = await startBroker()
    database = await open()
    api = await buildApi(broker.url, database)
    const station = (id: string, lat: number) => ({
      fleetId: 'f1',
      id,
      name: id,
      lat,
      lon: DROPOFF.lon,
      capacity: 2,
      online: true,
      statusAt: new Date(T0),
    })
    await database.db
      .insert(stations)
      .values([station('pickup', DROPOFF.lat - 6000 / M_PER_DEG), station('dropoff', DROPOFF.lat)])
    // Opening PGlite alone took 14 s on a loaded 2-core machine: more than the 10 s default.
  }, 60_000)
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.endAsync()
    await api.close()
    await database.close()
    await broker.close()
  })

  /** A delivery in flight on `droneId`; `distanceM` as the dispatcher would have set it. */
  const inFlight = (id: string, droneId: string, distanceM: number) =>
    database.db.insert(deliveries).values({
      id,
      fleetId: 'f1',
      status: 'en_route',
      source: 'api',
      pickupStationId: 'pickup',
      dropoffStationId: 'dropoff',
      payloadKg: 1,
      droneId,
      distanceM,
      requestedAt: new Date(T0 - 60 * S),
      departedAt: new Date(T0),
      updatedAt: new Date(T0),
    })

  /**
   * Flies `droneId` through `points` (at altitude 0: no descent in the ETA), one at a
   * time: each is committed before the next is sent, so the api computes an ETA from
   * every one (of a batch it takes only the newest point). Then it arrives at `arrivedS`.
   */
  const fly = async (droneId: string, deliveryId: string, points: Point[], arrivedS?: number) => {
    const drone = await connectDrone(broker.url, droneId)
    clients.push(drone)
    try {
      await flyWith(drone, droneId, deliveryId, points, arrivedS)
    } finally {
      clients.splice(clients.indexOf(drone), 1)
      await drone.endAsync()
    }
  }
  const flyWith = async (
    drone: MqttClient,
    droneId: string,
    deliveryId: string,
    points: Point[],
    arrivedS?: number,
  ) => {
    for (const [seq, p] of points.entries()) {
      const ts = T0 + p.t * S
      const msg = {
        ...telemetryAt(ts, seq),
        lat: DROPOFF.lat - p.remainingM / M_PER_DEG,
        lon: DROPOFF.lon,
        altM: 0,
        speedMps: p.speedMps,
        deliveryId,
      }
      await drone.publishAsync(`fleet/f1/drones/${droneId}/telemetry`, JSON.stringify(msg), {
        qos: 1,
      })
      await vi.waitFor(async () => {
        const [row] = await database.db
          .select({ at: drones.positionAt })
          .from(drones)
          .where(eq(drones.id, droneId))
        expect(row?.at?.getTime()).toBe(ts)
      }, WAIT)
    }
    if (arrivedS === undefined) return
    const arrived = {
      v: 1,
      ts: T0 + arrivedS * S,
      id: `arrived-${deliveryId}`,
      type: 'delivery.arrived',
      deliveryId,
    }
    // Sent twice: the redelivery is the same event, and writes nothing twice.
    const events = `fleet/f1/drones/${droneId}/events`
    await drone.publishAsync(events, JSON.stringify(arrived), { qos: 1 })
    await drone.publishAsync(events, JSON.stringify(arrived), { qos: 1 })
    await vi.waitFor(async () => {
      const [row] = await database.db
        .select({ status: deliveries.status })
        .from(deliveries)
        .where(eq(deliveries.id, deliveryId))
      expect(row?.status).toBe('arrived')
    }, WAIT)
  }

  const stats = async () => {
    const res = await get(api, '/api/stats')
    expect(res.statusCode, res.body).toBe(200)
    return res.json<{ eta: { samples: number; horizons: Horizon[] } }>().eta
  }

  it('scores the ETA a customer saw at departure, half-way, and 5 and 1 minutes before the arrival', async () => {
    // Distances are 10 m over the flown ones, so that half-way falls clearly between two
    // points: 3,005 m for the 6 km flights, 1,005 m for the 2 km one.
    await Promise.all([
      inFlight('slowed', 'd1', 6010),
      inFlight('steady', 'd2', 6010),
      inFlight('hop', 'd3', 2010),
    ])
    // 6 km: 3 km at 10 m/s (300 s), then 3 km at 5 m/s (600 s): it lands at 900 s. The
    // smoothed speed follows the slow-down with weight 0.3, so the ETA lags behind.
    await fly(
      'd1',
      'slowed',
      [...steady(0, 6000, 10, 60, 300), ...steady(360, 2700, 5, 60, 840)],
      900,
    )
    // 6 km at 10 m/s all the way, landing at 600 s: every ETA is exact.
    await fly('d2', 'steady', steady(0, 6000, 10, 60, 540), 600)
    // 2 km at 10 m/s, due at 200 s, but it lands at 230 s. Shorter than 5 minutes.
    await fly('d3', 'hop', steady(0, 2000, 10, 40, 160), 230)

    // By hand, error = ETA − arrival (s):
    // slowed: departure (0 s) and half-way (300 s, 3,000 m left) both say 600: −300.
    //   5 min before (600 s) the speed is 10 smoothed through five 5s: 8.5, 7.45, 6.715,
    //   6.2005, 5.84035; ETA 600 + 1500 / 5.84035 = 856.834: −43.166.
    //   1 min before (840 s), four more: 5.588245, 5.4117715, 5.28824005, 5.201768035;
    //   ETA 840 + 300 / 5.201768035 = 897.673: −2.327.
    // steady: 0 at every horizon. hop: −30 at departure, half-way (120 s, 800 m left),
    //   1 min before (160 s); no 5 minutes before.
    // percentile_cont(0.9) of n sorted values: at rank 0.9 (n − 1), interpolated.
    const { samples, horizons } = await stats()
    expect(samples).toBe(3)
    const expected = [
      ['departure', 3, (300 + 0 + 30) / 3, 30 + 0.8 * (300 - 30)],
      ['half', 3, (300 + 0 + 30) / 3, 30 + 0.8 * (300 - 30)],
      ['t-5min', 2, 43.166 / 2, 0.9 * 43.166],
      ['t-1min', 3, (2.327 + 0 + 30) / 3, 2.327 + 0.8 * (30 - 2.327)],
    ] as const
    expect(horizons.map((h) => h.horizon)).toEqual(expected.map(([h]) => h))
    for (const [i, [horizon, n, mean, p90]] of expected.entries()) {
      const got = horizons[i]!
      expect(got.deliveries, horizon).toBe(n)
      expect(got.meanAbsErrorS, horizon).toBeCloseTo(mean, 2)
      expect(got.p90AbsErrorS, horizon).toBeCloseTo(p90, 2)
    }
  })

  it('keeps the departure and half-way ETAs across a restart of the api, and leaves out the time horizons it did not see', async () => {
    await inFlight('steady', 'd1', 6010)
    const points = steady(0, 6000, 10, 60, 540)
    await fly('d1', 'steady', points.slice(0, 6)) // up to half-way (300 s)
    await api.close()
    api = await buildApi(broker.url, database)
    // The history now starts at 360 s: 5 minutes before the arrival (300 s) is before it.
    await fly('d1', 'steady', points.slice(6), 600)
    const { horizons } = await stats()
    expect(horizons.map((h) => [h.horizon, h.deliveries, h.meanAbsErrorS])).toEqual([
      ['departure', 1, 0],
      ['half', 1, 0],
      ['t-5min', 0, null],
      ['t-1min', 1, 0],
    ])
  })
})
