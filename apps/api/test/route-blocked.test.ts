// The dispatcher and no-fly zones (issue 18, item 3): a delivery whose route crosses an
// active no-fly zone is not assigned; it waits for the zone to be lifted and fails
// `route_blocked` after ROUTE_BLOCKED_TIMEOUT_S. The real api and dispatcher on a real
// database, drones and stations as rows (as dispatcher.test.ts's neighbours do), the
// dispatcher's rounds driven by `tick()` and its clock injected.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { DeliveryDetail } from '@skyline/schemas'
import type { Database } from '../src/db/client.ts'
import { drones, stations } from '../src/db/schema.ts'
import { DATABASES, bearer, buildApi, get, square, startBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

const FLEET = 'fz'
/** Pick-up and drop-off on the parallel 48.85 N, about 7.3 km apart. */
const PICKUP = { lat: 48.85, lon: 2.35 }
const DROPOFF = { lat: 48.85, lon: 2.45 }
/** A square across that leg. */
const ACROSS = { type: 'Polygon', coordinates: [square(48.845, 2.395)] }

describe.each(DATABASES)('no-fly zones and the dispatcher on %s', (_name, open) => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance
  let operator: string
  let clock: number

  beforeEach(async () => {
    broker = await startBroker()
    database = await open()
    operator = await bearer({ role: 'service', sub: 'ops', fleet: FLEET })
    clock = Date.now()
  })
  afterEach(async () => {
    await api?.close()
    await database.close()
    await broker.close()
  })

  const start = async (env: Record<string, string> = {}) => {
    api = await buildApi(broker.url, database, env, { now: () => new Date(clock) })
    const at = new Date(clock)
    await database.db.insert(stations).values(
      [
        ['s1', PICKUP],
        ['s2', DROPOFF],
      ].map(([id, p]) => ({
        fleetId: FLEET,
        id: id as string,
        name: id as string,
        ...(p as typeof PICKUP),
        capacity: 2,
        online: true,
        statusAt: at,
      })),
    )
  }

  /** An idle drone, online, charged and heard from now, at `where`. */
  const drone = (id: string, where: { lat: number; lon: number }) =>
    database.db.insert(drones).values({
      fleetId: FLEET,
      id,
      online: true,
      state: 'idle',
      ...where,
      altM: 0,
      batteryPct: 90,
      lastSeenAt: new Date(clock),
    })

  const call = (method: 'POST' | 'DELETE', url: string, payload?: object) =>
    api.inject({ method, url, headers: { authorization: operator }, payload })

  const zone = async (geometry: object, name = 'Stadium'): Promise<string> => {
    const res = await call('POST', '/api/geofences', {
      fleet: FLEET,
      name,
      kind: 'no_fly',
      geometry,
    })
    expect(res.statusCode, res.body).toBe(201)
    return res.json<{ id: string }>().id
  }

  const request = async (): Promise<string> => {
    const res = await call('POST', '/api/deliveries', {
      fleet: FLEET,
      pickupStationId: 's1',
      dropoffStationId: 's2',
      payloadKg: 1,
    })
    expect(res.statusCode, res.body).toBe(201)
    return res.json<{ id: string }>().id
  }

  const delivery = async (id: string) =>
    (await get(api, `/api/deliveries/${id}`, operator)).json<DeliveryDetail>()

  it('does not assign a delivery through a no-fly zone, and assigns it once the zone is deleted', async () => {
    await start()
    await drone('d1', PICKUP)
    const zoneId = await zone(ACROSS)
    const id = await request()
    await api.dispatcher.tick()
    await api.dispatcher.tick()
    const waiting = await delivery(id)
    expect(waiting).toMatchObject({
      status: 'requested',
      droneId: null,
      routeBlockedSince: new Date(clock).toISOString(),
    })
    // An area on the same leg is no obstacle; a zone elsewhere neither.
    const area = await call('POST', '/api/geofences', {
      fleet: FLEET,
      name: 'Park',
      kind: 'area',
      geometry: ACROSS,
    })
    expect(area.statusCode).toBe(201)

    expect((await call('DELETE', `/api/geofences/${zoneId}`)).statusCode).toBe(204)
    await api.dispatcher.tick()
    const assigned = await delivery(id)
    expect(assigned).toMatchObject({ status: 'assigned', droneId: 'd1', routeBlockedSince: null })
    expect(assigned.events.map((e) => e.status)).toEqual(['requested', 'assigned'])
  })

  it('fails a blocked delivery `route_blocked` once ROUTE_BLOCKED_TIMEOUT_S has passed, naming the zone', async () => {
    await start({ ROUTE_BLOCKED_TIMEOUT_S: '300' })
    await drone('d1', PICKUP)
    const zoneId = await zone(ACROSS, 'Stadium')
    const id = await request()
    await api.dispatcher.tick()
    expect((await delivery(id)).routeBlockedSince).toBe(new Date(clock).toISOString())

    clock += 299_000 // the drone is silent meanwhile, so stale: the timeout alone brings it back
    await api.dispatcher.tick()
    expect((await delivery(id)).status).toBe('requested')

    clock += 1_000
    await api.dispatcher.tick()
    const failed = await delivery(id)
    expect(failed).toMatchObject({ status: 'failed', failureReason: 'route_blocked' })
    expect(failed.events.at(-1)).toMatchObject({
      status: 'failed',
      detail: `route_blocked: crosses no-fly zone "Stadium" (${zoneId})`,
    })
  })

  it('fails a blocked delivery at once with ROUTE_BLOCKED_TIMEOUT_S=0', async () => {
    await start({ ROUTE_BLOCKED_TIMEOUT_S: '0' })
    await drone('d1', PICKUP)
    await zone(ACROSS)
    const id = await request()
    await api.dispatcher.tick()
    expect(await delivery(id)).toMatchObject({ status: 'failed', failureReason: 'route_blocked' })
  })

  it('clears the wait when a zone is lifted while no drone is free, and counts it anew', async () => {
    await start({ ROUTE_BLOCKED_TIMEOUT_S: '300' })
    await drone('d1', PICKUP)
    const zoneId = await zone(ACROSS)
    const id = await request()
    await api.dispatcher.tick()
    expect((await delivery(id)).routeBlockedSince).not.toBeNull()
    // Past the timeout with no drone free (stale) and the zone gone: it waits on, unblocked.
    expect((await call('DELETE', `/api/geofences/${zoneId}`)).statusCode).toBe(204)
    clock += 300_000
    await api.dispatcher.tick()
    expect(await delivery(id)).toMatchObject({ status: 'requested', routeBlockedSince: null })
  })

  it('gives the delivery to the nearest drone whose own way to the pick-up is clear', async () => {
    await start({ ROUTE_BLOCKED_TIMEOUT_S: '0' })
    // d-near sits 2.2 km west of the pick-up behind a zone; d-far 3.7 km north, clear.
    await drone('d-near', { lat: 48.85, lon: 2.32 })
    await drone('d-far', { lat: 48.8833, lon: 2.35 })
    await zone({ type: 'Polygon', coordinates: [square(48.845, 2.33)] }, 'Wall')
    const id = await request()
    await api.dispatcher.tick()
    expect(await delivery(id)).toMatchObject({ status: 'assigned', droneId: 'd-far' })

    // With only the drone behind the zone free, its leg blocks the delivery.
    const second = await request()
    await api.dispatcher.tick()
    expect(await delivery(second)).toMatchObject({
      status: 'failed',
      failureReason: 'route_blocked',
    })
  })
})
