import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import fc from 'fast-check'
import type { MqttClient } from 'mqtt'
import { connectAsync } from 'mqtt'
import { signDeviceToken } from '@skyline/auth'
import { ErrorSchema } from '@skyline/schemas'
import type { Database } from '../src/db/client.ts'
import {
  DATABASES,
  SECRET,
  WAIT,
  buildApi,
  connectDrone,
  get,
  square,
  startBroker,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'
import {
  HOSTILE_JSON,
  bodyArb,
  buildRequest,
  hostileBodies,
  hostileValues,
  jsonObject,
  operationsOf,
  wireValueArb,
} from './hostile-input.ts'
import type { BuiltRequest, Operation, Parameter, Variant } from './hostile-input.ts'

// Issue #14: hostile values in any parameter (path, query, header, body) get a 4xx in the
// error shape, never a 5xx. The requests are built from the OpenAPI document the app
// serves. A failure prints the request; the random part replays from its seed and path.

/** The random part's seed (the number) and size: the same requests on every run. */
const SEED = 14
const RUNS = 1000

describe.each(DATABASES)('REST under hostile input on %s', (_name, open) => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance
  let operator: string
  let operations: Operation[]
  const devices: MqttClient[] = []
  const known = { deliveryId: '', cursor: '', geofenceId: '', alertId: '' }
  const now = Date.now()

  beforeAll(async () => {
    broker = await startBroker()
    database = await open()
    api = await buildApi(broker.url, database)
    operator = `Bearer ${await signDeviceToken(SECRET, { role: 'service', sub: 'fuzz' })}`
    await seedFleet()
    const doc = await api.inject({ method: 'GET', url: '/docs/json' })
    operations = operationsOf(doc.json())
  }, 60_000)
  afterAll(async () => {
    for (const d of devices) await d.endAsync()
    await api?.close()
    await database?.close()
    await broker?.close()
  })

  /** Fleet f1: drone d1 with a short track, stations s1 and s2, two deliveries. */
  async function seedFleet() {
    const d1 = await connectDrone(broker.url, 'd1')
    devices.push(d1)
    await d1.publishAsync(
      'fleet/f1/drones/d1/status',
      JSON.stringify({ v: 1, ts: now, online: true, state: 'idle' }),
      { qos: 1, retain: true },
    )
    for (let seq = 0; seq < 3; seq++) {
      const telemetry = {
        ...{ v: 1, ts: now - 1000 + seq * 100, seq, lat: 48.85, lon: 2.35 + seq / 1e4, altM: 80 },
        ...{ speedMps: 12, headingDeg: 90, batteryPct: 90, state: 'idle' },
      }
      await d1.publishAsync('fleet/f1/drones/d1/telemetry', JSON.stringify(telemetry), { qos: 1 })
    }
    for (const [id, lon] of [
      ['s1', 2.35],
      ['s2', 2.36],
    ] as const) {
      const station = await connectAsync(broker.url, {
        clientId: `f1.${id}`,
        username: id,
        password: await signDeviceToken(SECRET, { role: 'station', sub: id, fleet: 'f1' }),
      })
      devices.push(station)
      const status = { v: 1, ts: now, online: true, name: id, lat: 48.85, lon, capacity: 2 }
      await station.publishAsync(
        `fleet/f1/stations/${id}/status`,
        JSON.stringify({ ...status, docked: [] }),
        { qos: 1, retain: true },
      )
    }
    await vi.waitFor(async () => {
      const track = await get(api, '/api/drones/d1/track')
      expect(track.json<{ points: unknown[] }>().points).toHaveLength(3)
      const s2 = await get(api, '/api/stations/s2')
      expect(s2.statusCode).toBe(200)
    }, WAIT)
    for (let i = 0; i < 2; i++) {
      const res = await api.inject({
        method: 'POST',
        url: '/api/deliveries',
        headers: { authorization: operator },
        payload: { fleet: 'f1', pickupStationId: 's1', dropoffStationId: 's2', payloadKg: 1 },
      })
      expect(res.statusCode, res.body).toBe(201)
      known.deliveryId = res.json<{ id: string }>().id
    }
    const page = await get(api, '/api/deliveries?limit=1')
    known.cursor = page.json<{ nextCursor: string }>().nextCursor
    const zone = await api.inject({
      method: 'POST',
      url: '/api/geofences',
      headers: { authorization: operator },
      payload: Object.fromEntries(geofenceBody),
    })
    expect(zone.statusCode, zone.body).toBe(201)
    known.geofenceId = zone.json<{ id: string }>().id
    // An alert of a drone that sends nothing: it stays open (issue 18).
    const { changed } = await api.alerts.service.apply({
      open: [
        {
          fleetId: 'f1',
          kind: 'battery_low',
          severity: 'warning',
          subject: { droneId: 'd9' },
          facts: { batteryPct: 5 },
        },
      ],
      resolve: [],
    })
    known.alertId = changed[0]!.id
  }

  /** A valid value for each parameter, so that one hostile value reaches the handler. */
  function valid(op: Operation, p: Parameter): string {
    const anHourAgo = new Date(now - 3_600_000).toISOString()
    const inAnHour = new Date(now + 3_600_000).toISOString()
    if (p.in === 'path' && p.name === 'id') {
      if (op.path.startsWith('/api/drones/')) return 'd1'
      if (op.path.startsWith('/api/stations/')) return 's1'
      if (op.path.startsWith('/api/geofences/')) return known.geofenceId
      if (op.path.startsWith('/api/alerts/')) return known.alertId
      return known.deliveryId
    }
    const byName: Record<string, string> = {
      fleet: 'f1',
      droneId: 'd1',
      stationId: 's1',
      from: anHourAgo,
      to: inAnHour,
      // The dead letters page by their outbox row's id: a cursor as that page writes one
      // (there are none to page here).
      cursor: op.path.endsWith('/dead-letters')
        ? Buffer.from(`${new Date(now).toISOString()}|1`).toString('base64url')
        : known.cursor,
      authorization: operator,
    }
    const value = byName[p.name] ?? (p.schema?.enum?.[0] as string | undefined) ?? p.schema?.minimum
    if (value === undefined) throw new Error(`no valid value for ${op.path} ${p.in} ${p.name}`)
    return String(value)
  }
  const geofenceBody: [string, unknown][] = [
    ['fleet', 'f1'],
    ['name', 'Fuzz'],
    ['kind', 'no_fly'],
    ['geometry', { type: 'Polygon', coordinates: [square(48.8, 2.3)] }],
  ]
  /** A valid body of each operation that takes one: each of its fields in turn turns hostile. */
  function validBodyOf(op: Operation): [string, unknown][] {
    if (op.path === '/api/geofences') return geofenceBody
    if (op.path === '/api/geofences/{id}') return [['name', 'Fuzzed']]
    return [
      ['fleet', 'f1'],
      ['pickupStationId', 's1'],
      ['dropoffStationId', 's2'],
      ['payloadKg', 1],
    ]
  }

  /** Sends the request; says what is wrong with the answer, if anything. */
  async function check(req: BuiltRequest): Promise<{ status: number; failure?: string }> {
    // Signed in (issue 16): the hostile values must reach validation, not stop at a 401.
    const headers = { authorization: operator, ...req.headers }
    const res = await api.inject({ ...req, headers, method: req.method as 'GET' })
    const text = Buffer.isBuffer(req.payload) ? req.payload.toString('latin1') : req.payload
    const sent =
      text !== undefined
        ? ` ${req.headers['content-type']} ${JSON.stringify(text.slice(0, 200))}`
        : ''
    const said = `${req.method} ${req.url.slice(0, 300)}${sent} -> ${res.statusCode} ${res.body.slice(0, 300)}`
    if (res.statusCode >= 500) return { status: res.statusCode, failure: said }
    if (res.statusCode >= 400) {
      const body = ErrorSchema.safeParse(safeJson(res.body))
      if (
        !body.success ||
        !/^[a-z][a-z0-9_]*$/.test(body.data.error.code) ||
        body.data.error.message === ''
      )
        return { status: res.statusCode, failure: `${said} (not the error shape)` }
    }
    return { status: res.statusCode }
  }

  it('walks every operation of the OpenAPI document, each answering its valid values', async () => {
    expect(operations.length).toBeGreaterThanOrEqual(13)
    for (const op of operations) {
      const req = buildRequest(op, (p) => valid(op, p), {
        values: {},
        ...(op.body !== undefined && {
          body: { payload: jsonObject(validBodyOf(op)), contentType: 'application/json' },
        }),
      })
      const res = await api.inject({
        ...req,
        headers: { authorization: operator, ...req.headers },
        method: op.method as 'GET',
      })
      // A cancelled delivery cannot be cancelled again: 409 after the first.
      expect(res.statusCode, `${op.method} ${op.path}: ${res.body}`).toBeLessThan(
        op.path.endsWith('/cancel') ? 410 : 300,
      )
    }
  })

  it('answers each hostile value of each parameter with a 4xx in the error shape', async () => {
    const failures: string[] = []
    let requests = 0
    const json = (fields: [string, unknown][]) => ({
      payload: jsonObject(fields),
      contentType: 'application/json',
    })
    for (const op of operations) {
      const validBody = validBodyOf(op)
      const body = op.body !== undefined ? json(validBody) : undefined
      // Each hostile value twice: beside valid values for every other parameter, and with
      // the optional query parameters left out, where the route's defaults apply (a track's
      // `to` in year 1 put its default `from` in year 0).
      const bare = Object.fromEntries(
        op.parameters
          .filter((p) => p.in === 'query' && p.required !== true)
          .map((p) => [p.name, { absent: true } as const]),
      )
      const variants: Variant[] = op.parameters.flatMap((p) =>
        hostileValues(valid(op, p)).flatMap((v) => [
          { values: { [p.name]: v }, body },
          { values: { ...bare, [p.name]: v }, body },
        ]),
      )
      if (op.body !== undefined) {
        for (const [i, [key]] of validBody.entries()) {
          for (const value of HOSTILE_JSON) {
            const fields = validBody.map(([k, v], j): [string, unknown] => [k, i === j ? value : v])
            variants.push({ values: {}, body: json(fields) })
          }
          variants.push({ values: {}, body: json(validBody.filter(([k]) => k !== key)) })
        }
      }
      // Bodies where none is expected, and every hostile whole body where one is.
      for (const b of hostileBodies(validBody)) variants.push({ values: {}, body: b })
      const sent = new Set<string>()
      for (const variant of variants) {
        const req = buildRequest(op, (p) => valid(op, p), variant)
        const key = JSON.stringify(req)
        if (sent.has(key)) continue // the bare form of a route's only query parameter
        sent.add(key)
        requests++
        const { failure } = await check(req)
        if (failure !== undefined) failures.push(failure)
      }
    }
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      for (const op of operations) {
        requests++
        const req = buildRequest({ ...op, method }, (p) => valid(op, p), { values: {} })
        const { failure } = await check(req)
        if (failure !== undefined) failures.push(failure)
      }
    }
    expect(failures, `${failures.length} of ${requests} requests`).toEqual([])
    expect(Object.prototype).not.toHaveProperty('polluted')
  }, 120_000)

  it('answers random mixtures of hostile and valid values likewise (seeded)', async () => {
    const request = fc.constantFrom(...operations).chain((op) =>
      fc
        .record({
          values: fc.record(
            Object.fromEntries(op.parameters.map((p) => [p.name, wireValueArb(valid(op, p))])),
          ),
          body: op.body !== undefined ? bodyArb(validBodyOf(op)) : fc.constant(undefined),
        })
        .map((variant) => buildRequest(op, (p) => valid(op, p), variant as Variant)),
    )
    const statuses: number[] = []
    await fc.assert(
      fc.asyncProperty(request, async (req) => {
        const { status, failure } = await check(req)
        statuses.push(status)
        if (failure !== undefined) throw new Error(failure)
      }),
      { seed: SEED, numRuns: RUNS },
    )
    expect(Object.prototype).not.toHaveProperty('polluted')
    // Not a property that holds because nothing gets past validation: many reach a handler.
    const answered = statuses.filter((s) => s < 300 || s === 404 || s === 409).length
    expect(answered).toBeGreaterThan(RUNS / 5)
  }, 120_000)
})

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
