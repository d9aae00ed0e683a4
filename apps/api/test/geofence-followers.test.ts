import { afterEach, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { openDatabase } from '../src/db/client.ts'
import type { Database } from '../src/db/client.ts'
import {
  WAIT,
  buildApi,
  freshPostgres,
  liveAuth,
  operatorOfEveryFleet,
  square,
  startBroker,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Issue 18: every api instance holds the zones in memory; a change made through one
// instance's REST reaches the others' index through the change feed (LISTEN/NOTIFY), not
// only at their periodic reload (30 s, longer than the wait here).

const url = process.env.DATABASE_URL
describe.runIf(url !== undefined && url !== '')(
  'zones changed on another instance (needs DATABASE_URL)',
  () => {
    let broker: TestBroker | undefined
    const databases: Database[] = []
    const apis: FastifyInstance[] = []
    afterEach(async () => {
      for (const api of apis.splice(0)) await api.close()
      for (const d of databases.splice(0).reverse()) await d.close()
      await broker?.close()
    })

    it("are in every instance's index within moments: created, changed, deleted", async () => {
      broker = await startBroker()
      const fresh = await freshPostgres(url!)
      databases.push(fresh)
      const second = await openDatabase({ url: fresh.url, dataDir: '' })
      databases.push(second)
      const leader = await buildApi(broker.url, fresh, { API_INSTANCE_ID: 'a' })
      apis.push(leader)
      const follower = await buildApi(broker.url, second, { API_INSTANCE_ID: 'b' })
      apis.push(follower)
      expect(follower.leadership.role).toBe('follower')
      const authorization = await operatorOfEveryFleet()
      // The leader's live stream: its map is told of a change made on the follower.
      const told: string[][] = []
      let snapshot = false
      const ws = await leader.injectWS(
        '/api/live',
        {},
        {
          onInit: (socket) =>
            socket.on('message', (data: Buffer) => {
              const frame = JSON.parse(data.toString()) as { type: string; geofences?: string[] }
              if (frame.type === 'snapshot') snapshot = true
              if (frame.geofences !== undefined) told.push(frame.geofences)
            }),
        },
      )
      ws.send(await liveAuth(authorization))
      await vi.waitFor(() => expect(snapshot).toBe(true), WAIT)
      const inside = (api: FastifyInstance, lat: number) =>
        api.geofences.index.zonesAt('f1', lat, 2.355, new Date()).map((z) => z.id)

      // Made on the follower: the leader (which dispatches) must know it.
      const created = await follower.inject({
        method: 'POST',
        url: '/api/geofences',
        headers: { authorization },
        payload: {
          fleet: 'f1',
          name: 'Tower',
          kind: 'no_fly',
          geometry: { type: 'Polygon', coordinates: [square(48.85, 2.35)] },
        },
      })
      expect(created.statusCode, created.body).toBe(201)
      const { id } = created.json<{ id: string }>()
      expect(inside(follower, 48.855)).toEqual([id])
      await vi.waitFor(() => expect(inside(leader, 48.855)).toEqual([id]), WAIT)
      await vi.waitFor(() => expect(told).toEqual([['f1']]), WAIT)
      ws.terminate()

      const moved = await leader.inject({
        method: 'PATCH',
        url: `/api/geofences/${id}`,
        headers: { authorization },
        payload: { geometry: { type: 'Polygon', coordinates: [square(48.86, 2.35)] } },
      })
      expect(moved.statusCode).toBe(200)
      await vi.waitFor(() => {
        expect(inside(follower, 48.855)).toEqual([])
        expect(inside(follower, 48.865)).toEqual([id])
      }, WAIT)

      const deleted = await follower.inject({
        method: 'DELETE',
        url: `/api/geofences/${id}`,
        headers: { authorization },
      })
      expect(deleted.statusCode).toBe(204)
      await vi.waitFor(() => expect(inside(leader, 48.865)).toEqual([]), WAIT)
    })
  },
)
