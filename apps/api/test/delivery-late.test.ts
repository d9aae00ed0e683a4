// `delivery_late` through the real api (issue 18): a delivery assigned by the dispatcher
// gets its promise; a real MQTT drone flies it so slowly that its ETA slips past the
// promise and the margin, the alert opens on REST; the drone completes it, the alert
// resolves. Every wait is for the state, bounded.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { MqttClient } from 'mqtt'
import type { Alert, DeliveryView, DroneEventType, Telemetry } from '@skyline/schemas'
import type { Database } from '../src/db/client.ts'
import { drones, stations } from '../src/db/schema.ts'
import {
  WAIT,
  buildApi,
  connectDrone,
  freshPglite,
  get,
  operatorOfEveryFleet,
  stationRow,
  startBroker,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'

describe('delivery_late', () => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance
  let drone: MqttClient

  beforeAll(async () => {
    broker = await startBroker()
    database = await freshPglite()
    api = await buildApi(broker.url, database, {
      ALERT_SWEEP_MS: '100',
      ALERT_LATE_MARGIN_S: '30',
    })
    const now = new Date()
    // Two stations about 1.1 km apart (north-south); the drone docked at the first.
    await database.db
      .insert(stations)
      .values([stationRow('f1', 's1', 48.85, now), stationRow('f1', 's2', 48.86, now)])
    await database.db.insert(drones).values({
      fleetId: 'f1',
      id: 'd1',
      online: true,
      state: 'idle',
      lat: 48.85,
      lon: 2.35,
      altM: 0,
      batteryPct: 90,
      positionAt: now,
      lastSeenAt: now,
    })
    drone = await connectDrone(broker.url, 'd1')
  }, 60_000)
  afterAll(async () => {
    await drone?.endAsync()
    await api?.close()
    await database?.close()
    await broker?.close()
  })

  const delivery = async (id: string) =>
    (await get(api, `/api/deliveries/${id}`)).json<DeliveryView>()
  const lateAlerts = async (): Promise<Alert[]> => {
    const res = await get(api, '/api/alerts?kind=delivery_late&fleet=f1')
    expect(res.statusCode, res.body).toBe(200)
    return res.json<{ alerts: Alert[] }>().alerts
  }
  const event = (type: DroneEventType, deliveryId: string) =>
    drone.publishAsync(
      'fleet/f1/drones/d1/events',
      JSON.stringify({ v: 1, ts: Date.now(), id: randomUUID(), type, deliveryId }),
      { qos: 1 },
    )
  const point = (deliveryId: string, seq: number, speedMps: number): Telemetry => ({
    v: 1,
    ts: Date.now(),
    seq,
    lat: 48.851,
    lon: 2.35,
    altM: 100,
    speedMps,
    headingDeg: 0,
    batteryPct: 80,
    state: 'en_route',
    deliveryId,
  })

  it('opens when the ETA slips past the promise by the margin, and resolves when the delivery completes', async () => {
    const created = await api.inject({
      method: 'POST',
      url: '/api/deliveries',
      headers: { authorization: await operatorOfEveryFleet() },
      payload: { fleet: 'f1', pickupStationId: 's1', dropoffStationId: 's2', payloadKg: 1 },
    })
    expect(created.statusCode, created.body).toBe(201)
    const id = created.json<{ id: string }>().id

    // Assigned, with its promise: docked at the pick-up, one leg of ~1.1 km at 10 m/s plus
    // its take-off and landing, about 171 s from now.
    const assigned = await vi.waitFor(async () => {
      const d = await delivery(id)
      expect(d).toMatchObject({ status: 'assigned', droneId: 'd1' })
      return d
    }, WAIT)
    const aheadS = (Date.parse(assigned.promisedAt!) - Date.parse(assigned.assignedAt!)) / 1000
    expect(aheadS).toBeGreaterThan(160)
    expect(aheadS).toBeLessThan(180)

    for (const type of ['delivery.accepted', 'delivery.picked_up', 'delivery.departed'] as const)
      await event(type, id)
    await vi.waitFor(async () => expect((await delivery(id)).status).toBe('en_route'), WAIT)
    // A point, once its ETA is stored (one ETA per batch: each point its own).
    let seq = 0
    const fly = async (speedMps: number) => {
      const before = (await delivery(id)).etaAt
      seq++
      await drone.publishAsync(
        'fleet/f1/drones/d1/telemetry',
        JSON.stringify(point(id, seq, speedMps)),
        { qos: 1 },
      )
      await vi.waitFor(async () => expect((await delivery(id)).etaAt).not.toBe(before), WAIT)
    }
    // On time: 1 km at 10 m/s.
    await fly(10)
    await api.alerts.evaluator.idle()
    api.alerts.evaluator.sweepSoon()
    await api.alerts.evaluator.idle()
    expect(await lateAlerts()).toEqual([])

    // A head wind: 0.5 m/s, smoothed over three points, slips the ETA by about 100 s.
    for (let i = 0; i < 3; i++) await fly(0.5)
    const late = await vi.waitFor(async () => {
      const [a] = await lateAlerts()
      expect(a).toMatchObject({
        state: 'open',
        severity: 'warning',
        subject: { deliveryId: id },
        facts: { promisedAt: assigned.promisedAt, marginS: 30, deliveryStatus: 'en_route' },
      })
      return a!
    }, WAIT)
    // Opened on one of the slipped ETAs (perhaps before the last point): late by it.
    const slipS = (Date.parse(String(late.facts.etaAt)) - Date.parse(assigned.promisedAt!)) / 1000
    expect(late.facts.latenessS).toBe(Math.round(slipS))
    expect(slipS).toBeGreaterThan(30)

    await event('delivery.completed', id)
    await vi.waitFor(async () => {
      const a = (await get(api, `/api/alerts/${late.id}`)).json<Alert>()
      expect(a).toMatchObject({ state: 'resolved', facts: { resolution: 'delivered' } })
    }, WAIT)
  })
})
