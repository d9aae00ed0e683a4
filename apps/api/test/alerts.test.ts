// Alerts end to end (issue 18): the real simulator (time-scaled) flies a drone through a
// no-fly zone on a real broker into the real api, and the breach reaches REST, the live
// stream, MQTT (`fleet/f1/alerts`, as a viewer) and the webhook (a real local HTTP server
// that checks the signature and refuses each change twice before it takes it), then
// resolves once the drone is out; a drone killed mid-delivery gives `drone_lost`; a
// blocked route gives `route_blocked`. Every wait is for the state, bounded.
import { once } from 'node:events'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { connectAsync } from 'mqtt'
import type { MqttClient } from 'mqtt'
import { signDeviceToken } from '@skyline/auth'
import { Fleet } from '@skyline/drone-sim'
import { AlertSchema } from '@skyline/schemas'
import type { Alert } from '@skyline/schemas'
import type { Database } from '../src/db/client.ts'
import { drones, stations } from '../src/db/schema.ts'
import {
  DATABASES,
  SECRET,
  WAIT,
  bearer,
  buildApi,
  get,
  liveAuth,
  operatorOfEveryFleet,
  square,
  startBroker,
  testFleet,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'

const WEBHOOK_SECRET = 'webhook-secret-for-the-tests'
/** Each change is refused this many times before the receiver takes it. */
const REFUSALS = 2
const LONG = { timeout: 30_000, interval: 50 }

/** What the receiver saw: every attempt, and the changes it took (by Skyline-Delivery). */
interface Receiver {
  url: string
  attempts: Map<string, number>
  taken: { delivery: string; alert: Alert }[]
  badSignatures: number
  server: Server
}

/** A webhook receiver that checks the signature (Stripe's scheme) as a real one would. */
async function startReceiver(): Promise<Receiver> {
  const r: Omit<Receiver, 'url' | 'server'> = { attempts: new Map(), taken: [], badSignatures: 0 }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      const header = String(req.headers['skyline-signature'] ?? '')
      const t = /t=(\d+)/.exec(header)?.[1] ?? ''
      const v1 = /v1=([0-9a-f]{64})/.exec(header)?.[1] ?? ''
      const expected = createHmac('sha256', WEBHOOK_SECRET).update(`${t}.${body}`).digest()
      const fresh = Math.abs(Date.now() / 1000 - Number(t)) < 300
      if (v1 === '' || !fresh || !timingSafeEqual(Buffer.from(v1, 'hex'), expected)) {
        r.badSignatures++
        res.writeHead(401).end()
        return
      }
      const delivery = String(req.headers['skyline-delivery'])
      const n = (r.attempts.get(delivery) ?? 0) + 1
      r.attempts.set(delivery, n)
      if (n <= REFUSALS) {
        res.writeHead(503).end('not yet')
        return
      }
      r.taken.push({ delivery, alert: AlertSchema.parse(JSON.parse(body)) })
      res.writeHead(204).end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return { ...r, url: `http://127.0.0.1:${port}/hooks/skyline`, server }
}

// One database: Postgres where the tests have one (the deployment's, with the change
// feed), else PGlite. The simulator's flights are what take time here; CI is near its budget.
const [dbName, openDb] = DATABASES.at(-1)!

describe(`alerts on ${dbName}`, () => {
  let broker: TestBroker
  let database: Database
  let receiver: Receiver
  let api: FastifyInstance
  let viewer: MqttClient
  const published: Alert[] = []
  const live: { type: string; alerts?: Alert[] }[] = []
  const cleanup: (() => Promise<unknown>)[] = []

  beforeAll(async () => {
    broker = await startBroker()
    database = await openDb()
    receiver = await startReceiver()
    api = await buildApi(broker.url, database, {
      ALERT_WEBHOOK_URL: receiver.url,
      ALERT_WEBHOOK_SECRET: WEBHOOK_SECRET,
      ALERT_WEBHOOK_BACKOFF_MS: '50',
      ALERT_WEBHOOK_MAX_ATTEMPTS: '5',
      ALERT_SWEEP_MS: '200',
      // The killed drone's will opens drone_lost once it has stood this long (s).
      ALERT_OFFLINE_GRACE_S: '1',
      ROUTE_BLOCKED_TIMEOUT_S: '0',
      // The test's own process runs the simulator, the api and PGlite: its pongs may be late.
      LIVE_MAX_LAG_MS: '60000',
    })
    // A viewer of fleet f1 on the broker, as a dashboard would be.
    viewer = await connectAsync(broker.url, {
      clientId: 'alert-viewer',
      username: 'alert-viewer',
      password: await signDeviceToken(SECRET, { role: 'viewer', sub: 'alert-viewer', fleet: 'f1' }),
    })
    viewer.on('message', (_topic, payload) =>
      published.push(AlertSchema.parse(JSON.parse(payload.toString()))),
    )
    await viewer.subscribeAsync('fleet/f1/alerts', { qos: 1 })
    const ws = await api.injectWS(
      '/api/live',
      {},
      {
        onInit: (socket) =>
          socket.on('message', (data: Buffer) =>
            live.push(JSON.parse(data.toString()) as (typeof live)[number]),
          ),
      },
    )
    ws.send(await liveAuth())
    cleanup.push(async () => ws.terminate())
    await vi.waitFor(() => expect(live[0]?.type).toBe('snapshot'), WAIT)
  }, 60_000)
  afterAll(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
    await viewer?.endAsync()
    await api?.close()
    receiver?.server.close()
    await database?.close()
    await broker?.close()
  })

  const operator = (fleet: string) => bearer({ role: 'service', sub: `ops-${fleet}`, fleet })
  const call = async (method: 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
    api.inject({
      method,
      url,
      headers: { authorization: await operatorOfEveryFleet() },
      ...(payload !== undefined && { payload }),
    })
  const alertsOf = async (query: string): Promise<Alert[]> => {
    const res = await get(api, `/api/alerts?${query}`)
    expect(res.statusCode, res.body).toBe(200)
    return res.json<{ alerts: Alert[] }>().alerts
  }
  const delivery = async (id: string) =>
    (await get(api, `/api/deliveries/${id}`)).json<{ status: string }>()
  const request = async (fleet: string, pickupStationId: string, dropoffStationId: string) => {
    const res = await call('POST', '/api/deliveries', {
      fleet,
      pickupStationId,
      dropoffStationId,
      payloadKg: 1,
    })
    expect(res.statusCode, res.body).toBe(201)
    return res.json<{ id: string }>().id
  }
  const liveAlerts = () => live.flatMap((f) => f.alerts ?? [])

  it('reports a drone flying through a no-fly zone on REST, live, MQTT and the webhook, and resolves it once the drone is out', async () => {
    const fleet = await Fleet.start(
      testFleet(broker.url, { drones: 1, stations: 2, demandPerMin: 0, timeScale: 10, rateHz: 10 }),
    )
    cleanup.push(() => fleet.stop())
    await vi.waitFor(async () => {
      const body = (await get(api, '/api/stations?fleet=f1')).json<{ stations: unknown[] }>()
      expect(body.stations).toHaveLength(2)
      const d = (await get(api, '/api/drones?fleet=f1')).json<{ drones: { online: boolean }[] }>()
      expect(d.drones.filter((x) => x.online)).toHaveLength(1)
    }, LONG)
    const { stations: stops } = (await get(api, '/api/stations?fleet=f1')).json<{
      stations: { id: string; lat: number; lon: number }[]
    }>()
    const from = stops.find((s) => s.id === 'station-1')!
    const to = stops.find((s) => s.id === 'station-2')!
    // A box over the middle of the leg, clear of both stations. Not active yet: the
    // dispatcher would not assign a route through it (route-blocked.test.ts).
    const along = (f: number) => [
      from.lon + (to.lon - from.lon) * f,
      from.lat + (to.lat - from.lat) * f,
    ]
    const [aLon, aLat] = along(0.2) as [number, number]
    const [bLon, bLat] = along(0.85) as [number, number]
    const pad = 0.0003
    const [w, e] = [Math.min(aLon, bLon) - pad, Math.max(aLon, bLon) + pad]
    const [s, n] = [Math.min(aLat, bLat) - pad, Math.max(aLat, bLat) + pad]
    const created = await call('POST', '/api/geofences', {
      fleet: 'f1',
      name: 'Stadium',
      kind: 'no_fly',
      geometry: {
        type: 'Polygon',
        coordinates: [
          [
            [w, s],
            [e, s],
            [e, n],
            [w, n],
            [w, s],
          ],
        ],
      },
      activeFrom: '2999-01-01T00:00:00Z',
    })
    expect(created.statusCode, created.body).toBe(201)
    const zoneId = created.json<{ id: string }>().id

    const id = await request('f1', 'station-1', 'station-2')
    await vi.waitFor(async () => expect((await delivery(id)).status).toBe('en_route'), LONG)
    // The drone is on its way: the zone comes into force now, across its path.
    const activated = await call('PATCH', `/api/geofences/${zoneId}`, { activeFrom: null })
    expect(activated.statusCode, activated.body).toBe(200)

    const breach = await vi.waitFor(async () => {
      const [a] = await alertsOf('kind=geofence_breach&fleet=f1')
      expect(a).toMatchObject({
        kind: 'geofence_breach',
        severity: 'critical',
        fleetId: 'f1',
        subject: { droneId: 'drone-1', zoneId },
        facts: { zoneName: 'Stadium', zoneKind: 'no_fly', deliveryId: id },
      })
      return a!
    }, LONG)
    const resolved = await vi.waitFor(async () => {
      const a = (await get(api, `/api/alerts/${breach.id}`)).json<Alert>()
      expect(a).toMatchObject({ state: 'resolved', facts: { resolution: 'left_zone' } })
      return a
    }, LONG)
    expect(Date.parse(resolved.resolvedAt!)).toBeGreaterThan(Date.parse(resolved.openedAt))
    // One alert for the whole crossing: one per kind and subject while open.
    expect(await alertsOf('kind=geofence_breach&fleet=f1')).toHaveLength(1)

    const states = (list: Alert[]) => list.filter((a) => a.id === breach.id).map((a) => a.state)
    // Live: opened, then resolved.
    await vi.waitFor(() => expect(states(liveAlerts())).toEqual(['open', 'resolved']), WAIT)
    // MQTT, to the fleet's viewer: opened, then resolved.
    await vi.waitFor(() => expect(states(published)).toEqual(['open', 'resolved']), WAIT)
    // The webhook: each change taken once, after two refusals; its retries counted.
    await vi.waitFor(() => {
      expect(states(receiver.taken.map((t) => t.alert))).toEqual(['open', 'resolved'])
    }, WAIT)
    expect(receiver.badSignatures).toBe(0)
    // The receiver answered before the api recorded the attempt: wait for the rows.
    const rows = await vi.waitFor(async () => {
      const rows = await api.alerts.service.repository.outboxOf(breach.id)
      expect(rows.map((r) => [r.attempts, r.deliveredAt !== null, r.deadAt])).toEqual([
        [REFUSALS + 1, true, null],
        [REFUSALS + 1, true, null],
      ])
      return rows
    }, WAIT)
    for (const r of rows) expect(receiver.attempts.get(String(r.id))).toBe(REFUSALS + 1)
    const metrics = (await api.inject({ method: 'GET', url: '/metrics' })).body
    expect(metrics).toMatch(/skyline_alerts_opened_total\{kind="geofence_breach"\} 1/)
    expect(metrics).toMatch(/skyline_alert_webhook_retries_total \d+/)
    expect(
      Number(/skyline_alert_webhook_retries_total (\d+)/.exec(metrics)![1]),
    ).toBeGreaterThanOrEqual(2 * REFUSALS)

    // A drone killed mid-delivery: the socket dies without a DISCONNECT, the will fires.
    expect((await call('DELETE', `/api/geofences/${zoneId}`)).statusCode).toBe(204)
    const next = await request('f1', 'station-2', 'station-1')
    await vi.waitFor(
      async () =>
        expect(['to_pickup', 'picked_up', 'en_route']).toContain((await delivery(next)).status),
      LONG,
    )
    fleet.drones[0]!.dropConnection(3_600_000)
    const lost = await vi.waitFor(async () => {
      const [a] = await alertsOf('kind=drone_lost&state=open&fleet=f1')
      expect(a).toMatchObject({
        severity: 'critical',
        subject: { droneId: 'drone-1', deliveryId: next },
        facts: { online: false, offlineReason: 'connection_lost' },
      })
      return a!
    }, LONG)
    await vi.waitFor(
      () => expect(published.some((a) => a.id === lost.id && a.state === 'open')).toBe(true),
      WAIT,
    )
  }, 120_000)

  it('reports a delivery failed route_blocked, lets an operator acknowledge it, and resolves it once the route is clear', async () => {
    const at = new Date()
    const FLEET = 'fz'
    await database.db.insert(stations).values(
      (
        [
          ['s1', 2.35],
          ['s2', 2.45],
        ] as const
      ).map(([id, lon]) => ({
        fleetId: FLEET,
        id,
        name: id,
        lat: 48.85,
        lon,
        capacity: 2,
        online: true,
        statusAt: at,
      })),
    )
    await database.db.insert(drones).values({
      fleetId: FLEET,
      id: 'd1',
      online: true,
      state: 'idle',
      lat: 48.85,
      lon: 2.35,
      altM: 0,
      batteryPct: 90,
      lastSeenAt: at,
    })
    const zone = await call('POST', '/api/geofences', {
      fleet: FLEET,
      name: 'Bridge',
      kind: 'no_fly',
      geometry: { type: 'Polygon', coordinates: [square(48.845, 2.395)] },
    })
    expect(zone.statusCode, zone.body).toBe(201)
    const zoneId = zone.json<{ id: string }>().id
    const id = await request(FLEET, 's1', 's2')

    const blocked = await vi.waitFor(async () => {
      expect((await delivery(id)).status).toBe('failed')
      const [a] = await alertsOf(`kind=route_blocked&fleet=${FLEET}`)
      expect(a).toMatchObject({
        state: 'open',
        subject: { deliveryId: id },
        facts: { zones: [{ id: zoneId, name: 'Bridge' }], pickupStationId: 's1' },
      })
      return a!
    }, WAIT)

    // A viewer may not acknowledge; an operator of another fleet does not see it.
    const ack = (authorization: string) =>
      api.inject({
        method: 'POST',
        url: `/api/alerts/${blocked.id}/ack`,
        headers: { authorization },
      })
    expect((await ack(await bearer({ role: 'viewer', sub: 'v', fleet: FLEET }))).statusCode).toBe(
      403,
    )
    expect((await ack(await operator('other'))).statusCode).toBe(404)
    const acked = await ack(await operator(FLEET))
    expect(acked.statusCode, acked.body).toBe(200)
    expect(acked.json()).toMatchObject({ state: 'acknowledged', acknowledgedBy: `ops-${FLEET}` })
    expect((await ack(await operator(FLEET))).json()).toMatchObject({ state: 'acknowledged' })
    expect(await alertsOf(`state=acknowledged&fleet=${FLEET}`)).toHaveLength(1)

    // The zone lifted: the route is clear, the alert resolves by itself.
    expect((await call('DELETE', `/api/geofences/${zoneId}`)).statusCode).toBe(204)
    await vi.waitFor(async () => {
      const a = (await get(api, `/api/alerts/${blocked.id}`)).json<Alert>()
      expect(a).toMatchObject({
        state: 'resolved',
        acknowledgedBy: `ops-${FLEET}`,
        facts: { resolution: 'route_clear' },
      })
    }, WAIT)
    const late = await ack(await operator(FLEET))
    expect(late.statusCode).toBe(409)
    expect(late.json()).toMatchObject({ error: { code: 'already_resolved' } })
    // Not opened again for the same failed delivery.
    await api.alerts.evaluator.idle()
    api.alerts.evaluator.sweepSoon()
    await api.alerts.evaluator.idle()
    expect(await alertsOf(`kind=route_blocked&fleet=${FLEET}`)).toHaveLength(1)
  })

  it('keeps one open alert per kind and subject, whoever opens it', async () => {
    const opening = {
      fleetId: 'fu',
      kind: 'station_offline' as const,
      severity: 'warning' as const,
      subject: { stationId: 's9' },
      facts: {},
    }
    const first = await api.alerts.service.apply({ open: [opening], resolve: [] })
    expect(first).toMatchObject({ conflicts: 0, changed: [{ state: 'open' }] })
    expect(await api.alerts.service.apply({ open: [opening], resolve: [] })).toMatchObject({
      conflicts: 1,
      changed: [],
    })
    const [open] = first.changed
    await api.alerts.service.apply({
      open: [],
      resolve: [{ id: open!.id, kind: 'station_offline', facts: {} }],
    })
    // Resolved, a new one of the same subject may open.
    expect((await api.alerts.service.apply({ open: [opening], resolve: [] })).conflicts).toBe(0)
  })

  it('pages alerts newest first, scoped to the reader, and refuses a bad query', async () => {
    const all = await alertsOf('limit=200')
    expect(all.length).toBeGreaterThanOrEqual(3)
    const first = (await get(api, '/api/alerts?limit=1')).json<{
      alerts: Alert[]
      nextCursor: string
    }>()
    expect(first.alerts[0]!.id).toBe(all[0]!.id)
    const second = (await get(api, `/api/alerts?limit=1&cursor=${first.nextCursor}`)).json<{
      alerts: Alert[]
    }>()
    expect(second.alerts[0]!.id).toBe(all[1]!.id)
    const viewerOfF1 = await bearer({ role: 'viewer', sub: 'v1', fleet: 'f1' })
    const seen = (await get(api, '/api/alerts?limit=200', viewerOfF1)).json<{ alerts: Alert[] }>()
    expect(seen.alerts.length).toBeGreaterThan(0)
    expect(seen.alerts.every((a) => a.fleetId === 'f1')).toBe(true)
    for (const q of ['state=closed', 'kind=fire', 'cursor=nope', 'limit=0'])
      expect((await get(api, `/api/alerts?${q}`)).statusCode, q).toBe(400)
  })
})
