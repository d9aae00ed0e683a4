import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { signDeviceToken } from '@skyline/auth'
import { Fleet } from '@skyline/drone-sim'
import type { FleetOptions } from '@skyline/drone-sim'
import { eq } from 'drizzle-orm'
import type { Database } from '../src/db/client.ts'
import { deliveries } from '../src/db/schema.ts'
import { DATABASES, SECRET, WAIT, buildApi, get, startBroker, testFleet } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

const fleetOptions = (url: string, o: Partial<FleetOptions> = {}): FleetOptions =>
  testFleet(url, { drones: 1, ...o })

describe.each(DATABASES)('dispatch on %s', (_name, open) => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance
  const cleanup: (() => Promise<void>)[] = []

  beforeEach(async () => {
    broker = await startBroker()
    database = await open()
  })
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
    await database.close()
    await broker.close()
  })

  // In the test, under its longer timeout: PGlite alone can take most of the hook's 10 s.
  const start = async () => {
    api = await buildApi(broker.url, database)
    cleanup.unshift(() => api.close())
  }

  const startFleet = async (o: Partial<FleetOptions>) => {
    const fleet = await Fleet.start(fleetOptions(broker.url, o))
    cleanup.push(() => fleet.stop())
    await vi.waitFor(async () => {
      const res = await get(api, `/api/fleet?fleet=${o.fleetId}`)
      const body = res.json<{ drones: unknown[]; stations: unknown[] }>()
      expect(body.stations).toHaveLength(fleet.stations.length)
      expect(body.drones).toHaveLength(fleet.drones.length)
    }, WAIT)
  }

  const request = async (fleet: string) => {
    const authorization = `Bearer ${await signDeviceToken(SECRET, { role: 'service', sub: 'ops' })}`
    const res = await api.inject({
      method: 'POST',
      url: '/api/deliveries',
      headers: { authorization },
      payload: {
        fleet,
        pickupStationId: 'station-1',
        dropoffStationId: 'station-2',
        payloadKg: 1,
      },
    })
    expect(res.statusCode, res.body).toBe(201)
    return res.json<{ id: string }>().id
  }

  it("serves a fleet's request while older ones of a fleet with no free drone wait", async () => {
    await start()
    await startFleet({ fleetId: 'fa', drones: 0 })
    await startFleet({ fleetId: 'fb', drones: 1 })
    // More unservable requests than a round used to read (50), all older than B's.
    for (let i = 0; i < 60; i++) await request('fa')
    const id = await request('fb')

    const served = await vi.waitFor(
      async () => {
        const res = await get(api, `/api/deliveries/${id}`)
        const d = res.json<{ status: string; droneId: string | null }>()
        expect(d.status).not.toBe('requested')
        return d
      },
      { timeout: 15_000, interval: 25 },
    )
    expect(served.droneId).toBe('drone-1')
    const res = await get(api, '/api/deliveries?fleet=fa&limit=100')
    const waiting = res.json<{ deliveries: { status: string }[] }>().deliveries
    expect(waiting.map((d) => d.status)).toEqual(Array(60).fill('requested'))
  })

  it('still fails a request every drone declined, with none free', async () => {
    await start()
    await startFleet({ fleetId: 'fa', drones: 0 })
    const id = await request('fa')
    const declinedBy = ['d1', 'd2', 'd3', 'd4', 'd5'] // the default maxAttempts
    await database.db.update(deliveries).set({ declinedBy }).where(eq(deliveries.id, id))
    await vi.waitFor(async () => {
      const res = await get(api, `/api/deliveries/${id}`)
      expect(res.json<{ status: string }>().status).toBe('failed')
    }, WAIT)
  })
})
