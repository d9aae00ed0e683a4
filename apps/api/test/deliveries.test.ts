import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { signDeviceToken } from '@skyline/auth'
import { Fleet } from '@skyline/drone-sim'
import type { FleetOptions } from '@skyline/drone-sim'
import type { Database } from '../src/db/client.ts'
import {
  DATABASES,
  SECRET,
  WAIT,
  buildApi,
  connectDrone,
  get as getAs,
  startBroker,
  testFleet,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'

const fleetOptions = (url: string, o: Partial<FleetOptions> = {}): FleetOptions =>
  testFleet(url, { timeScale: 100, ...o })

interface Delivery {
  id: string
  status: string
  source: string
  droneId: string | null
  events: { status: string; detail: string | null }[]
  track: unknown[]
  etaAt: string | null
  etaErrorS: number | null
  requestedAt: string
}

describe.each(DATABASES)('deliveries on %s', (_name, open) => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance
  let operator: string
  const cleanup: (() => Promise<void>)[] = []

  beforeEach(async () => {
    broker = await startBroker()
    database = await open()
    api = await buildApi(broker.url, database)
    operator = `Bearer ${await signDeviceToken(SECRET, { role: 'service', sub: 'ops' })}`
  })
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
    await api.close()
    await database.close()
    await broker.close()
  })

  const post = (url: string, body?: object, authorization = operator) =>
    api.inject({
      method: 'POST',
      url,
      headers: { authorization },
      ...(body !== undefined && { payload: body }),
    })
  const get = async <T>(url: string) => {
    const res = await getAs(api, url)
    expect(res.statusCode, res.body).toBe(200)
    return res.json<T>()
  }
  /** An operator's request from one station to another; resolves with its id. */
  const request = async (pickupStationId: string, dropoffStationId: string) => {
    const res = await post('/api/deliveries', {
      fleet: 'f1',
      pickupStationId,
      dropoffStationId,
      payloadKg: 1,
    })
    expect(res.statusCode, res.body).toBe(201)
    return res.json<{ id: string }>().id
  }
  const startFleet = async (o: Partial<FleetOptions> = {}) => {
    const fleet = await Fleet.start(fleetOptions(broker.url, o))
    cleanup.push(() => fleet.stop())
    // Stations and drones known to the api before anything is asked of them.
    await vi.waitFor(async () => {
      const body = await get<{ drones: unknown[]; stations: unknown[] }>('/api/fleet?fleet=f1')
      expect(body.stations).toHaveLength(fleet.stations.length)
      expect(body.drones).toHaveLength(fleet.drones.length)
    }, WAIT)
    return fleet
  }

  it('takes a requested delivery through the whole lifecycle with a real drone', async () => {
    await startFleet()
    const created = await post('/api/deliveries', {
      fleet: 'f1',
      pickupStationId: 'station-1',
      dropoffStationId: 'station-2',
      payloadKg: 1.5,
    })
    expect(created.statusCode, created.body).toBe(201)
    const { id } = created.json<{ id: string }>()

    const done = await vi.waitFor(
      async () => {
        const d = await get<Delivery>(`/api/deliveries/${id}`)
        expect(d.status).toBe('completed')
        return d
      },
      { timeout: 25_000, interval: 25 },
    )
    expect(done.events.map((e) => e.status)).toEqual([
      'requested',
      'assigned',
      'to_pickup',
      'picked_up',
      'en_route',
      'arrived',
      'completed',
    ])
    expect(done.droneId).toMatch(/^drone-/)
    expect(done.track.length).toBeGreaterThan(0)
    // The ETA shown while it flew, against when it arrived (the drone's clock).
    expect(done.etaAt).not.toBeNull()
    expect(Math.abs(done.etaErrorS!)).toBeLessThan(60)
    const stats = await get<{ eta: { meanAbsErrorS: number; samples: number } }>('/api/stats')
    expect(stats.eta.samples).toBe(1)
    expect(stats.eta.meanAbsErrorS).toBeCloseTo(Math.abs(done.etaErrorS!), 3)
    const list = await get<{ deliveries: Delivery[] }>('/api/deliveries?status=completed')
    expect(list.deliveries.map((d) => d.id)).toEqual([id])
  })

  it("dispatches a station's own delivery request", async () => {
    await startFleet({ demandPerMin: 2, timeScale: 100 })
    const done = await vi.waitFor(
      async () => {
        const { deliveries } = await get<{ deliveries: Delivery[] }>(
          '/api/deliveries?status=completed',
        )
        expect(deliveries.length).toBeGreaterThan(0)
        return deliveries[0]!
      },
      { timeout: 25_000, interval: 25 },
    )
    expect(done.source).toBe('station')
  })

  it('cancels a delivery and tells its drone', async () => {
    const fleet = await startFleet({ timeScale: 5 })
    const id = await request('station-2', 'station-1')
    const flying = await vi.waitFor(
      async () => {
        const d = await get<Delivery>(`/api/deliveries/${id}`)
        // In flight: the drone nearest the pick-up may already stand on it.
        expect(['to_pickup', 'picked_up', 'en_route']).toContain(d.status)
        return d
      },
      { timeout: 15_000, interval: 25 },
    )
    const res = await post(`/api/deliveries/${id}/cancel`)
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json<Delivery>().status).toBe('cancelled')
    const drone = fleet.drones.find((d) => d.id === flying.droneId)!
    await vi.waitFor(() => expect(drone.model.state).toBe('returning'), WAIT)
    expect((await post(`/api/deliveries/${id}/cancel`)).statusCode).toBe(409)
  })

  it('offers a refused delivery to the next drone, never twice to the same one', async () => {
    // Stations 100+ km apart: no drone has the battery, each one refuses.
    await startFleet({ radiusKm: 150 })
    const id = await request('station-1', 'station-2')
    const refused = await vi.waitFor(
      async () => {
        const d = await get<Delivery>(`/api/deliveries/${id}`)
        const requeued = d.events.filter(
          (e) => e.status === 'requested' && /insufficient_battery/.test(e.detail ?? ''),
        )
        expect(requeued).toHaveLength(2)
        return d
      },
      { timeout: 15_000, interval: 25 },
    )
    // Row and events come from one snapshot: after the second refusal, requested again.
    expect(refused.status, JSON.stringify(refused.events)).toBe('requested')
    expect(
      refused.events
        .filter((e) => e.status === 'assigned')
        .map((e) => e.detail)
        .sort(),
    ).toEqual(['drone drone-1', 'drone drone-2'])
  })

  it('takes an assignment back from a drone that does not answer in time, and cancels it there', async () => {
    await api.close()
    api = await buildApi(broker.url, database, { ACCEPT_TIMEOUT_S: '1' })
    // A drone that reports itself idle and then ignores its commands.
    const silent = await connectDrone(broker.url, 'mute')
    cleanup.push(() => silent.endAsync())
    const commands: { type: string; deliveryId?: string }[] = []
    silent.on('message', (_t, payload) =>
      commands.push(JSON.parse(payload.toString()) as { type: string }),
    )
    await silent.subscribeAsync('fleet/f1/drones/mute/commands', { qos: 2 })
    await startFleet({ drones: 0 })
    const report = async () => {
      await silent.publishAsync(
        'fleet/f1/drones/mute/status',
        JSON.stringify({ v: 1, ts: Date.now(), online: true, state: 'idle' }),
        { qos: 1, retain: true },
      )
      await silent.publishAsync(
        'fleet/f1/drones/mute/telemetry',
        JSON.stringify({
          v: 1,
          ts: Date.now(),
          seq: 0,
          lat: 48.85,
          lon: 2.35,
          altM: 0,
          speedMps: 0,
          headingDeg: 0,
          batteryPct: 95,
          state: 'idle',
        }),
        { qos: 1 },
      )
    }
    await report()
    const id = await request('station-1', 'station-2')
    await vi.waitFor(
      () => expect(commands.map((c) => c.type)).toEqual(['delivery.assign', 'cancel']),
      { timeout: 10_000, interval: 25 },
    )
    expect(commands[1]!.deliveryId).toBe(id)
    const d = await get<Delivery>(`/api/deliveries/${id}`)
    expect(d.status).toBe('requested')
    expect(d.events.at(-1)).toMatchObject({
      status: 'requested',
      detail: 'drone mute: no answer in time',
    })
  })

  it('needs an operator token to request or cancel', async () => {
    const body = {
      fleet: 'f1',
      pickupStationId: 'station-1',
      dropoffStationId: 'station-2',
      payloadKg: 1,
    }
    expect((await post('/api/deliveries', body, '')).statusCode).toBe(401)
    expect((await post('/api/deliveries', body, 'Bearer forged')).statusCode).toBe(401)
    const drone = `Bearer ${await signDeviceToken(SECRET, { role: 'drone', sub: 'd1', fleet: 'f1' })}`
    const forbidden = await post('/api/deliveries', body, drone)
    expect(forbidden.statusCode).toBe(403)
    expect(forbidden.json()).toEqual({
      error: { code: 'forbidden', message: 'a drone token cannot operate' },
    })
    expect((await post('/api/deliveries/abc/cancel', undefined, '')).statusCode).toBe(401)
  })

  it('refuses a service token of another fleet: it operates its own fleets only', async () => {
    await startFleet({ drones: 0 })
    const other = `Bearer ${await signDeviceToken(SECRET, { role: 'service', sub: 'ops-o', fleet: 'other' })}`
    const body = {
      fleet: 'f1',
      pickupStationId: 'station-1',
      dropoffStationId: 'station-2',
      payloadKg: 1,
    }
    const refused = await post('/api/deliveries', body, other)
    expect(refused.statusCode, refused.body).toBe(403)
    expect(refused.json()).toEqual({
      error: { code: 'forbidden', message: 'this token does not operate fleet f1' },
    })
    const id = await request('station-1', 'station-2')
    const cancel = await post(`/api/deliveries/${id}/cancel`, undefined, other)
    expect(cancel.statusCode, cancel.body).toBe(404)
    expect((await get<Delivery>(`/api/deliveries/${id}`)).status).toBe('requested')
  })

  it('refuses bad requests with a 4xx and a message', async () => {
    await startFleet({ drones: 0 })
    const bad = async (res: Awaited<ReturnType<typeof post>>, status: number, code: string) => {
      expect(res.statusCode, res.body).toBe(status)
      expect(res.json<{ error: { code: string } }>().error.code).toBe(code)
    }
    await bad(
      await post('/api/deliveries', {
        fleet: 'f1',
        pickupStationId: 'station-1',
        dropoffStationId: 'nowhere',
        payloadKg: 1,
      }),
      400,
      'unknown_station',
    )
    await bad(
      await post('/api/deliveries', {
        fleet: 'f1',
        pickupStationId: 'station-1',
        dropoffStationId: 'station-1',
        payloadKg: 1,
      }),
      400,
      'bad_request',
    )
    await bad(
      await post('/api/deliveries', {
        fleet: 'f1',
        pickupStationId: 'station-1',
        dropoffStationId: 'station-2',
        payloadKg: 500,
      }),
      400,
      'bad_request',
    )
    await bad(await post('/api/deliveries', { fleet: 'f1' }), 400, 'bad_request')
    for (const url of [
      '/api/deliveries?status=flying',
      '/api/deliveries?limit=100000',
      '/api/deliveries?cursor=bm9wZQ',
      '/api/deliveries?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z',
    ]) {
      const res = await getAs(api, url)
      expect(res.statusCode, url).toBe(400)
    }
    await bad(await getAs(api, '/api/deliveries/nope'), 404, 'not_found')
  })

  it('pages through deliveries newest first with a cursor', async () => {
    await startFleet({ drones: 0 })
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      const res = await post('/api/deliveries', {
        fleet: 'f1',
        pickupStationId: 'station-1',
        dropoffStationId: 'station-2',
        payloadKg: 1,
      })
      ids.push(res.json<{ id: string }>().id)
    }
    const seen: string[] = []
    const times: string[] = []
    let cursor: string | null = null
    do {
      const page: { deliveries: Delivery[]; nextCursor: string | null } = await get(
        `/api/deliveries?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      )
      expect(page.deliveries.length).toBeLessThanOrEqual(2)
      seen.push(...page.deliveries.map((d) => d.id))
      times.push(...page.deliveries.map((d) => d.requestedAt))
      cursor = page.nextCursor
    } while (cursor !== null)
    // Every delivery exactly once, newest first (requests within one millisecond tie
    // in an order of their own, so the set is compared, and the times).
    expect([...seen].sort()).toEqual([...ids].sort())
    expect(new Set(seen).size).toBe(ids.length)
    expect(times).toEqual([...times].sort().reverse())
  })
})
