import { afterEach, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { MqttClient } from 'mqtt'
import { openDatabase } from '../src/db/client.ts'
import type { Database } from '../src/db/client.ts'
import { stations } from '../src/db/schema.ts'
import {
  WAIT,
  buildApi,
  connectDrone,
  freshPostgres,
  liveAuth,
  operatorOfEveryFleet,
  startBroker,
  stationRow,
  telemetryAt,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Issue 17, item 2: every api instance serves the live stream, and the changes the
// leader commits reach the live streams of the others (Postgres LISTEN/NOTIFY).

interface Frame {
  type: string
  drones?: { id: string; fleetId: string; position?: { lat: number } | null }[]
  deliveries?: { id: string; status: string }[]
  alerts?: { kind: string; state: string; subject: { droneId?: string } }[]
}

const url = process.env.DATABASE_URL
describe.runIf(url !== undefined && url !== '')(
  'the live stream of an instance that does not lead (needs DATABASE_URL)',
  () => {
    let broker: TestBroker | undefined
    const databases: Database[] = []
    const apis: FastifyInstance[] = []
    let drone: MqttClient | undefined
    afterEach(async () => {
      await drone?.endAsync(true)
      for (const api of apis.splice(0)) await api.close()
      for (const d of databases.splice(0).reverse()) await d.close()
      await broker?.close()
    })

    it("shows the leader's drones, deliveries and alerts, read from the database", async () => {
      broker = await startBroker()
      const fresh = await freshPostgres(url!)
      databases.push(fresh)
      const second = await openDatabase({ url: fresh.url, dataDir: '' })
      databases.push(second)
      const leader = await buildApi(broker.url, fresh, { API_INSTANCE_ID: 'a' })
      apis.push(leader)
      const follower = await buildApi(broker.url, second, { API_INSTANCE_ID: 'b' })
      apis.push(follower)
      expect([leader.leadership.role, follower.leadership.role]).toEqual(['leader', 'follower'])

      const frames: Frame[] = []
      const ws = await follower.injectWS(
        '/api/live',
        {},
        {
          onInit: (socket) =>
            socket.on('message', (data: Buffer) =>
              frames.push(JSON.parse(data.toString()) as Frame),
            ),
        },
      )
      ws.send(await liveAuth())
      await vi.waitFor(() => expect(frames[0]?.type).toBe('snapshot'), WAIT)

      // Telemetry goes to the leader's ingest only; the follower's frame shows it.
      drone = await connectDrone(broker.url, 'd-1')
      const at = telemetryAt(Date.now(), 1)
      await drone.publishAsync('fleet/f1/drones/d-1/telemetry', JSON.stringify(at), { qos: 1 })
      await vi.waitFor(() => {
        const seen = frames.flatMap((f) => (f.type === 'changes' ? (f.drones ?? []) : []))
        expect(seen.find((d) => d.id === 'd-1')).toMatchObject({
          fleetId: 'f1',
          position: { lat: at.lat },
        })
      }, WAIT)

      // A delivery created over the leader's REST reaches the follower's stream.
      const now = new Date()
      await fresh.db
        .insert(stations)
        .values([stationRow('quiet', 's1', 48.85, now), stationRow('quiet', 's2', 48.86, now)])
      const created = await leader.inject({
        method: 'POST',
        url: '/api/deliveries',
        headers: { authorization: await operatorOfEveryFleet() },
        payload: { fleet: 'quiet', pickupStationId: 's1', dropoffStationId: 's2', payloadKg: 1 },
      })
      expect(created.statusCode).toBe(201)
      const { id } = created.json<{ id: string }>()
      await vi.waitFor(() => {
        const seen = frames.flatMap((f) => (f.type === 'changes' ? (f.deliveries ?? []) : []))
        expect(seen.find((d) => d.id === id)).toMatchObject({ status: 'requested' })
      }, WAIT)

      // An alert the leader opens (issue 18) reaches the follower's stream too.
      const low = { ...telemetryAt(Date.now(), 2), batteryPct: 5 }
      await drone.publishAsync('fleet/f1/drones/d-1/telemetry', JSON.stringify(low), { qos: 1 })
      await vi.waitFor(() => {
        const seen = frames.flatMap((f) => (f.type === 'changes' ? (f.alerts ?? []) : []))
        expect(seen).toContainEqual(
          expect.objectContaining({
            kind: 'battery_low',
            state: 'open',
            subject: { droneId: 'd-1' },
          }),
        )
      }, WAIT)
      ws.terminate()
    })
  },
)
