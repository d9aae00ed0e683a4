import { afterEach, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import postgres from 'postgres'
import { count } from 'drizzle-orm'
import { droneEvents } from '../src/db/schema.ts'
import { WAIT, buildApi, connectDrone, freshPostgres, startBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// A real outage needs a real server: PGlite runs inside the process. CI sets DATABASE_URL.
const url = process.env.DATABASE_URL
describe.runIf(url !== undefined && url !== '')(
  'a database outage (needs DATABASE_URL: a Postgres server)',
  () => {
    let broker: TestBroker
    let api: FastifyInstance | undefined
    const cleanup: (() => Promise<void>)[] = []
    afterEach(async () => {
      for (const c of cleanup.splice(0).reverse()) await c()
    })

    it('loses no QoS 1 message: not ready while down, catches up by itself', async () => {
      broker = await startBroker()
      cleanup.push(() => broker.close())
      const database = await freshPostgres(url!)
      cleanup.push(() => database.close())
      api = await buildApi(broker.url, database, { INGEST_BATCH_DELAY_MS: '5' })
      cleanup.push(() => api!.close())
      const admin = postgres(url!, { max: 1, onnotice: () => {} })
      cleanup.push(() => admin.end())
      const drone = await connectDrone(broker.url, 'd5')
      cleanup.push(() => drone.endAsync())
      const stored = async () => (await database.db.select({ n: count() }).from(droneEvents))[0]!.n
      const ready = async () => (await api!.inject({ method: 'GET', url: '/api/ready' })).statusCode

      const total = 200
      let sent = 0
      const publish = async (upTo: number) => {
        for (; sent < upTo; sent++) {
          const event = {
            v: 1,
            ts: Date.now(),
            id: `out-${sent}`,
            type: 'battery.low',
            detail: String(sent),
          }
          await drone.publishAsync('fleet/f1/drones/d5/events', JSON.stringify(event), { qos: 1 })
        }
      }
      await publish(50)
      await vi.waitFor(async () => expect(await stored()).toBe(50), WAIT)

      // The server refuses the database and drops every connection to it.
      await admin.unsafe(`ALTER DATABASE ${database.name} WITH ALLOW_CONNECTIONS false`)
      await admin.unsafe(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database.name}'`,
      )
      await publish(total) // the broker takes them and holds what the api has not acknowledged
      await vi.waitFor(async () => expect(await ready()).toBe(503), WAIT)

      await admin.unsafe(`ALTER DATABASE ${database.name} WITH ALLOW_CONNECTIONS true`)
      await vi.waitFor(async () => expect(await stored()).toBe(total), {
        timeout: 20_000,
        interval: 25,
      })
      await vi.waitFor(async () => expect(await ready()).toBe(200), WAIT)
    })
  },
)
