// Who may read and operate what (issue 16): every operation of the OpenAPI document ×
// every kind of caller, with the status expected; then the live stream's sign-in and
// scoping, and tokens kept out of the logs.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import type { Database, Db } from '../src/db/client.ts'
import { TelemetryPartitions } from '../src/db/partitions.ts'
import {
  alerts,
  deliveries,
  deliveryEvents,
  drones,
  geofences,
  stations,
  telemetry,
} from '../src/db/schema.ts'
import { tokenAuthenticator } from '../src/auth/authenticate.ts'
import type { Authenticate } from '../src/auth/authenticate.ts'
import { CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED } from '../src/plugins/app/live.ts'
import {
  DATABASES,
  SECRET,
  WAIT,
  bearer,
  buildApi,
  get,
  liveAuth,
  square,
  startBroker,
  stationRow,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'

/** Fleet `fa` is the one the requests are about; every one of its ids starts `fa-`. */
const OWN = 'fa'
const OTHER = 'fb'

/** Device tokens carry no admin role (it comes with OIDC): this token stands for one. */
const ADMIN_TOKEN = 'an-admin-of-the-identity-server'
const withAdmin =
  (device: Authenticate): Authenticate =>
  async (token) =>
    token === ADMIN_TOKEN
      ? { sub: 'root', role: 'admin', fleets: '*', kind: 'oidc' }
      : device(token)

const CALLERS = [
  'none',
  'forged',
  'drone',
  'viewerOwn',
  'viewerOther',
  'serviceOwn',
  'serviceOther',
  'admin',
] as const
type Caller = (typeof CALLERS)[number]

async function authorizationOf(caller: Caller): Promise<string | undefined> {
  switch (caller) {
    case 'none':
      return undefined
    case 'forged':
      return 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoidmlld2VyIn0.forged'
    case 'drone':
      return bearer({ role: 'drone', sub: 'fa-d1', fleet: OWN })
    case 'viewerOwn':
      return bearer({ role: 'viewer', sub: 'v-own', fleet: OWN })
    case 'viewerOther':
      return bearer({ role: 'viewer', sub: 'v-other', fleet: OTHER })
    case 'serviceOwn':
      return bearer({ role: 'service', sub: 'ops-own', fleet: OWN })
    case 'serviceOther':
      return bearer({ role: 'service', sub: 'ops-other', fleet: OTHER })
    case 'admin':
      return `Bearer ${ADMIN_TOKEN}`
  }
}

/**
 * What each kind of operation answers each caller. A drone's or a station's token reads
 * nothing over HTTP (403), a viewer reads, service and admin also operate; another
 * fleet's resource is a 404, like one that does not exist; a list of another fleet's is
 * empty (checked below: no `fa-` id in it).
 */
type Kind = 'public' | 'list' | 'operatorList' | 'one' | 'create' | 'cancel' | 'update' | 'delete'
const EXPECTED: Record<Kind, Record<Caller, number>> = {
  public: {
    none: 200,
    forged: 200,
    drone: 200,
    viewerOwn: 200,
    viewerOther: 200,
    serviceOwn: 200,
    serviceOther: 200,
    admin: 200,
  },
  list: {
    none: 401,
    forged: 401,
    drone: 403,
    viewerOwn: 200,
    viewerOther: 200,
    serviceOwn: 200,
    serviceOther: 200,
    admin: 200,
  },
  // A list only operators read (the webhook's dead letters): a viewer's token gets 403.
  operatorList: {
    none: 401,
    forged: 401,
    drone: 403,
    viewerOwn: 403,
    viewerOther: 403,
    serviceOwn: 200,
    serviceOther: 200,
    admin: 200,
  },
  one: {
    none: 401,
    forged: 401,
    drone: 403,
    viewerOwn: 200,
    viewerOther: 404,
    serviceOwn: 200,
    serviceOther: 404,
    admin: 200,
  },
  create: {
    none: 401,
    forged: 401,
    drone: 403,
    viewerOwn: 403,
    viewerOther: 403,
    serviceOwn: 201,
    serviceOther: 403,
    admin: 201,
  },
  cancel: {
    none: 401,
    forged: 401,
    drone: 403,
    viewerOwn: 403,
    viewerOther: 403,
    serviceOwn: 200,
    serviceOther: 404,
    admin: 200,
  },
  update: {
    none: 401,
    forged: 401,
    drone: 403,
    viewerOwn: 403,
    viewerOther: 403,
    serviceOwn: 200,
    serviceOther: 404,
    admin: 200,
  },
  delete: {
    none: 401,
    forged: 401,
    drone: 403,
    viewerOwn: 403,
    viewerOther: 403,
    serviceOwn: 204,
    serviceOther: 404,
    admin: 204,
  },
}

/**
 * Every operation of the api, by kind. An operation in the OpenAPI document and not
 * here fails the test: a new endpoint says who may call it before it ships.
 */
const OPERATIONS: Record<string, Kind> = {
  'GET /api/health': 'public',
  'GET /api/ready': 'public',
  'GET /api/auth/config': 'public',
  'GET /api/auth/me': 'list',
  'GET /api/fleet': 'list',
  'GET /api/drones': 'list',
  'GET /api/drones/{id}': 'one',
  'GET /api/drones/{id}/track': 'one',
  'GET /api/stations': 'list',
  'GET /api/stations/{id}': 'one',
  'GET /api/deliveries': 'list',
  'GET /api/deliveries/{id}': 'one',
  'POST /api/deliveries': 'create',
  'POST /api/deliveries/{id}/cancel': 'cancel',
  'GET /api/geofences': 'list',
  'GET /api/geofences/{id}': 'one',
  'POST /api/geofences': 'create',
  'PATCH /api/geofences/{id}': 'update',
  'DELETE /api/geofences/{id}': 'delete',
  'GET /api/alerts': 'list',
  'GET /api/alerts/{id}': 'one',
  // Acknowledging again changes nothing and answers 200: one alert serves every caller.
  'POST /api/alerts/{id}/ack': 'cancel',
  'GET /api/alerts/webhook/dead-letters': 'operatorList',
  'GET /api/stats': 'list',
}

/** An `id` path parameter: the own fleet's resource of that path. */
function idFor(path: string, caller: Caller, method: string): string {
  if (path.endsWith('/cancel')) return `fa-cancel-${caller}` // one each: a cancel is once
  if (path.startsWith('/api/geofences/'))
    return method === 'DELETE' ? `fa-zone-${caller}` : 'fa-zone' // a delete is once too
  if (path.startsWith('/api/drones/')) return 'fa-d1'
  if (path.startsWith('/api/stations/')) return 'fa-s1'
  if (path.startsWith('/api/deliveries/')) return 'fa-del'
  if (path.startsWith('/api/alerts/')) return 'fa-alert'
  throw new Error(`${path}: say which seeded resource its {id} is (idFor)`)
}

const at = new Date(Date.now() - 60_000)

/** One fleet as rows: two stations, a drone (and `twin`, an id both fleets use), deliveries. */
async function seed(db: Db, f: string): Promise<void> {
  await db
    .insert(stations)
    .values([stationRow(f, `${f}-s1`, 48.85, at), stationRow(f, `${f}-s2`, 48.86, at)])
  const drone = (id: string) => ({
    fleetId: f,
    id,
    online: false,
    state: 'offline',
    lat: 48.85,
    lon: 2.35,
    altM: 50,
    positionAt: at,
    lastSeenAt: at,
  })
  await db.insert(drones).values([drone(`${f}-d1`), drone('twin')])
  const delivery = (id: string) => ({
    id,
    fleetId: f,
    status: 'requested' as const,
    source: 'api' as const,
    pickupStationId: `${f}-s1`,
    dropoffStationId: `${f}-s2`,
    payloadKg: 1,
    requestedAt: at,
    updatedAt: at,
  })
  await db
    .insert(deliveries)
    .values([`${f}-del`, ...CALLERS.map((c) => `${f}-cancel-${c}`)].map(delivery))
  await db.insert(deliveryEvents).values({ deliveryId: `${f}-del`, status: 'requested', at })
  const zone = (id: string) => ({
    id,
    fleetId: f,
    name: id,
    kind: 'no_fly' as const,
    geometry: { type: 'Polygon' as const, coordinates: [square(48.8, 2.3)] },
    createdAt: at,
    updatedAt: at,
  })
  await db
    .insert(geofences)
    .values([`${f}-zone`, ...CALLERS.map((c) => `${f}-zone-${c}`)].map(zone))
  await db.insert(alerts).values({
    id: `${f}-alert`,
    fleetId: f,
    kind: 'battery_low',
    severity: 'warning',
    state: 'open',
    subjectKey: `drone:${f}-d1`,
    droneId: `${f}-d1`,
    openedAt: at,
    updatedAt: at,
    facts: { batteryPct: 12 },
  })
  await new TelemetryPartitions(db).ensureFor([at])
  await db.insert(telemetry).values({
    fleetId: f,
    droneId: `${f}-d1`,
    ts: at,
    seq: 1,
    lat: 48.85,
    lon: 2.35,
    altM: 50,
    speedMps: 10,
    headingDeg: 90,
    batteryPct: 80,
    state: 'en_route',
    deliveryId: `${f}-del`,
    receivedAt: at,
  })
}

interface LiveFrame {
  type: string
  drones: { id: string; fleetId: string }[]
  stations: { fleetId: string }[]
  deliveries: { id: string; fleetId: string }[]
}

interface Operation {
  method: string
  path: string
  kind: Kind
  fleetQuery: boolean
  secured: boolean
}

describe.each(DATABASES)('access on %s', (_name, open) => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance
  let operations: Operation[]
  const logs: string[] = []

  beforeAll(async () => {
    broker = await startBroker()
    database = await open()
    api = await buildApi(
      broker.url,
      database,
      { LOG_LEVEL: 'info', LIVE_AUTH_TIMEOUT_MS: '300' },
      {
        authenticate: withAdmin(tokenAuthenticator(SECRET)),
        logStream: { write: (line) => void logs.push(line) },
      },
    )
    await seed(database.db, OWN)
    await seed(database.db, OTHER)
    const doc = (await api.inject({ method: 'GET', url: '/docs/json' })).json<{
      paths: Record<
        string,
        Record<string, { security?: unknown[]; parameters?: { in: string; name: string }[] }>
      >
    }>()
    operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => {
        const key = `${method.toUpperCase()} ${path}`
        return {
          method: method.toUpperCase(),
          path,
          kind: OPERATIONS[key]!,
          fleetQuery: (op.parameters ?? []).some((p) => p.in === 'query' && p.name === 'fleet'),
          secured: (op.security ?? []).length > 0,
        }
      }),
    )
  }, 60_000)
  afterAll(async () => {
    await api?.close()
    await database?.close()
    await broker?.close()
  })

  async function call(op: Operation, caller: Caller, query = '') {
    const url =
      (op.path.includes('{id}')
        ? op.path.replace('{id}', idFor(op.path, caller, op.method))
        : op.path) + query
    const authorization = await authorizationOf(caller)
    return api.inject({
      method: op.method as 'GET',
      url,
      headers: authorization !== undefined ? { authorization } : {},
      ...(bodyFor(op) !== undefined && { payload: bodyFor(op) }),
    })
  }

  /** A valid body of a write, in the own fleet. */
  function bodyFor(op: Operation): object | undefined {
    if (op.method === 'POST' && op.path === '/api/deliveries')
      return { fleet: OWN, pickupStationId: 'fa-s1', dropoffStationId: 'fa-s2', payloadKg: 1 }
    if (op.method === 'POST' && op.path === '/api/geofences')
      return {
        fleet: OWN,
        name: 'fa-new',
        kind: 'no_fly',
        geometry: { type: 'Polygon', coordinates: [square(48.8, 2.3)] },
      }
    if (op.method === 'PATCH') return { name: 'fa-renamed' }
    return undefined
  }

  it('has an entry for every operation of the OpenAPI document, and documents who may call it', () => {
    const documented = operations.map((o) => `${o.method} ${o.path}`).sort()
    expect(documented).toEqual(Object.keys(OPERATIONS).sort())
    for (const op of operations) expect(op.secured, op.path).toBe(op.kind !== 'public')
  })

  it('answers every operation × caller as the matrix says, and no other fleet leaks', async () => {
    const wrong: string[] = []
    for (const op of operations) {
      for (const caller of CALLERS) {
        const res = await call(op, caller)
        const want = EXPECTED[op.kind][caller]
        const said = `${op.method} ${op.path} as ${caller}: ${res.statusCode}, want ${want} (${res.body.slice(0, 200)})`
        if (res.statusCode !== want) wrong.push(said)
        else if (res.statusCode >= 400) {
          // The error shape, and a 401 names the scheme it wants (RFC 6750 §3).
          const body = res.json<{ error?: { code?: string } }>()
          if (typeof body.error?.code !== 'string') wrong.push(`${said}: not the error shape`)
          if (res.statusCode === 401 && res.headers['www-authenticate'] !== 'Bearer')
            wrong.push(`${said}: no WWW-Authenticate`)
        } else if (caller.endsWith('Other') && op.kind !== 'public' && res.body.includes('fa-'))
          wrong.push(`${said}: shows fleet ${OWN}`)
      }
    }
    expect(wrong).toEqual([])
  })

  it('answers ?fleet= of a fleet the reader has no right to as one that does not exist', async () => {
    const wrong: string[] = []
    for (const op of operations.filter((o) => o.fleetQuery)) {
      for (const caller of ['viewerOther', 'serviceOther'] as const) {
        const res = await call(op, caller, `?fleet=${OWN}`)
        const want = op.kind === 'one' ? 404 : EXPECTED[op.kind][caller] === 403 ? 403 : 200
        if (res.statusCode !== want || (res.statusCode === 200 && res.body.includes('fa-')))
          wrong.push(
            `${op.path}?fleet=${OWN} as ${caller}: ${res.statusCode} ${res.body.slice(0, 200)}`,
          )
      }
    }
    expect(wrong).toEqual([])
  })

  it('finds an id two fleets use in the reader’s own fleet, without ambiguity', async () => {
    const own = await get(api, '/api/drones/twin', await authorizationOf('viewerOwn'))
    expect(own.statusCode, own.body).toBe(200)
    expect(own.json<{ fleetId: string }>().fleetId).toBe(OWN)
    // Every fleet's reader has both: it must say which.
    const admin = await get(api, '/api/drones/twin', `Bearer ${ADMIN_TOKEN}`)
    expect(admin.statusCode).toBe(409)
  })

  it("counts only the reader's fleets in /api/stats", async () => {
    const stats = async (caller: Caller) =>
      (await get(api, '/api/stats', await authorizationOf(caller))).json<{
        drones: number
        stations: number
        deliveries: number
      }>()
    const perFleet = { drones: 2, stations: 2, deliveries: 1 + CALLERS.length }
    expect(await stats('viewerOwn')).toMatchObject({
      drones: perFleet.drones,
      stations: perFleet.stations,
    })
    const all = await stats('admin')
    expect(all).toMatchObject({ drones: 4, stations: 4 })
    expect((await stats('viewerOther')).deliveries).toBeLessThan(all.deliveries)
  })

  /**
   * A live client signed in with `authorization` (undefined: every fleet's operator; null:
   * it sends nothing), or sending `first`; its frames and close code.
   */
  async function live(authorization: string | null | undefined, first?: string) {
    const frames: LiveFrame[] = []
    let closed: number | undefined
    const ws: WebSocket = await api.injectWS(
      '/api/live',
      {},
      {
        onInit: (socket) => {
          socket.on('message', (data: Buffer) =>
            frames.push(JSON.parse(data.toString()) as LiveFrame),
          )
          socket.on('close', (code: number) => (closed = code))
        },
      },
    )
    if (first !== undefined) ws.send(first)
    else if (authorization !== null) ws.send(await liveAuth(authorization))
    return { ws, frames, closed: () => closed }
  }

  it('streams a live reader its own fleets only: snapshot and changes', async () => {
    const viewer = await live(await authorizationOf('viewerOwn'))
    const admin = await live(`Bearer ${ADMIN_TOKEN}`)
    await vi.waitFor(() => expect(viewer.frames[0]?.type).toBe('snapshot'), WAIT)
    await vi.waitFor(() => expect(admin.frames[0]?.type).toBe('snapshot'), WAIT)
    const snapshot = viewer.frames[0]!
    expect(new Set(snapshot.drones.map((d) => d.fleetId))).toEqual(new Set([OWN]))
    expect(new Set(snapshot.stations.map((s) => s.fleetId))).toEqual(new Set([OWN]))
    expect(new Set(snapshot.deliveries.map((d) => d.fleetId))).toEqual(new Set([OWN]))
    expect(new Set(admin.frames[0]!.drones.map((d) => d.fleetId))).toEqual(new Set([OWN, OTHER]))

    const moved = (fleetId: string, droneId: string) => ({
      kind: 'telemetry' as const,
      fleetId,
      droneId,
      receivedAt: new Date(),
      msg: {
        v: 1 as const,
        ts: Date.now(),
        seq: 2,
        lat: 48.851,
        lon: 2.351,
        altM: 60,
        speedMps: 10,
        headingDeg: 90,
        batteryPct: 79,
        state: 'en_route' as const,
      },
    })
    api.live.committed([moved(OTHER, 'fb-d1'), moved(OWN, 'fa-d1')])
    api.live.deliveryChanged('fb-del')
    api.live.deliveryChanged('fa-del')
    const changes = (c: typeof viewer) => c.frames.filter((f) => f.type === 'changes')
    await vi.waitFor(() => {
      const seen = changes(admin).flatMap((f) => f.drones.map((d) => `${d.fleetId}/${d.id}`))
      expect(seen).toEqual(expect.arrayContaining(['fb/fb-d1', 'fa/fa-d1']))
      expect(changes(admin).flatMap((f) => f.deliveries.map((d) => d.id))).toContain('fb-del')
    }, WAIT)
    await vi.waitFor(
      () =>
        expect(changes(viewer).flatMap((f) => f.deliveries.map((d) => d.id))).toContain('fa-del'),
      WAIT,
    )
    const sent = changes(viewer)
    expect(sent.flatMap((f) => f.drones.map((d) => d.fleetId))).toContain(OWN)
    for (const f of sent) {
      for (const x of [...f.drones, ...f.stations, ...f.deliveries]) expect(x.fleetId).toBe(OWN)
    }
    viewer.ws.terminate()
    admin.ws.terminate()
  })

  it('closes a live client that does not sign in, or not as a reader, with 4401 or 4403', async () => {
    const silent = await live(null) // says nothing: LIVE_AUTH_TIMEOUT_MS is 300 in this file
    const forged = await live(await authorizationOf('forged'))
    const junk = await live(
      undefined,
      JSON.stringify({ type: 'bounds', south: 0, west: 0, north: 1, east: 1 }),
    )
    const drone = await live(await authorizationOf('drone'))
    await vi.waitFor(() => {
      expect(silent.closed()).toBe(CLOSE_UNAUTHORIZED)
      expect(forged.closed()).toBe(CLOSE_UNAUTHORIZED)
      expect(junk.closed()).toBe(CLOSE_UNAUTHORIZED)
      expect(drone.closed()).toBe(CLOSE_FORBIDDEN)
    }, WAIT)
    for (const c of [silent, forged, junk, drone]) expect(c.frames).toEqual([])
    // Their places are given back.
    await vi.waitFor(() => expect(api.live.size).toBe(0), WAIT)
  })

  it('never writes a token to the log', async () => {
    const tokens = await Promise.all(
      (['viewerOwn', 'serviceOwn', 'forged'] as const).map(async (c) =>
        (await authorizationOf(c))!.slice('Bearer '.length),
      ),
    )
    const before = logs.length
    for (const t of tokens) {
      await get(api, '/api/drones', `Bearer ${t}`)
      await get(api, '/api/drones/nobody', `Bearer ${t}`)
      await api.inject({
        method: 'POST',
        url: '/api/deliveries',
        headers: { authorization: `Bearer ${t}` },
        payload: '{',
      })
      const c = await live(undefined, await liveAuth(t))
      await vi.waitFor(() => expect(c.frames.length + (c.closed() ?? 0)).toBeGreaterThan(0), WAIT)
      c.ws.terminate()
    }
    // A header logged on purpose is redacted too.
    api.log.info({ headers: { authorization: `Bearer ${tokens[0]}` } }, 'a header')
    const written = logs.slice(before).join('')
    expect(written).toContain('/api/drones/nobody') // the requests were logged
    expect(written).toContain('[redacted]')
    for (const t of tokens) expect(written).not.toContain(t)
  })
})
