// No-fly zones and areas over REST (issue 18, item 1): create, read, change and delete
// them on a real database, scoped to the caller's fleets, bad input answered 400, and the
// index the ingest and the dispatcher ask kept up with every change.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { GeofenceView } from '@skyline/schemas'
import type { Database } from '../src/db/client.ts'
import { DATABASES, WAIT, bearer, buildApi, liveAuth, square, startBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

const polygon = (lat: number, lon: number, d = 0.01) => ({
  type: 'Polygon' as const,
  coordinates: [square(lat, lon, d)],
})

describe.each(DATABASES)('geofences on %s', (_name, open) => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance
  let operator: string
  let otherOperator: string
  let viewer: string

  beforeAll(async () => {
    broker = await startBroker()
    database = await open()
    api = await buildApi(broker.url, database)
    operator = await bearer({ role: 'service', sub: 'ops-a', fleet: 'fa' })
    otherOperator = await bearer({ role: 'service', sub: 'ops-b', fleet: 'fb' })
    viewer = await bearer({ role: 'viewer', sub: 'v-a', fleet: 'fa' })
  }, 60_000)
  afterAll(async () => {
    await api?.close()
    await database?.close()
    await broker?.close()
  })

  const call = (
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    authorization: string,
    payload?: unknown,
  ) =>
    api.inject({
      method,
      url,
      headers: { authorization },
      ...(payload !== undefined && { payload: payload as object }),
    })

  const create = async (body: object, authorization = operator): Promise<GeofenceView> => {
    const res = await call('POST', '/api/geofences', authorization, body)
    expect(res.statusCode, res.body).toBe(201)
    return res.json<GeofenceView>()
  }

  it('creates, reads, changes and deletes a zone, and the index follows each step', async () => {
    const created = await create({
      fleet: 'fa',
      name: 'Stadium',
      kind: 'no_fly',
      geometry: polygon(48.85, 2.35),
    })
    expect(created).toMatchObject({
      fleetId: 'fa',
      name: 'Stadium',
      kind: 'no_fly',
      activeFrom: null,
      activeUntil: null,
      notifyOnEnterLeave: false,
      geometry: polygon(48.85, 2.35),
    })
    const inside = () =>
      api.geofences.index.zonesAt('fa', 48.855, 2.355, new Date()).map((z) => z.id)
    expect(inside()).toEqual([created.id])

    const one = await call('GET', `/api/geofences/${created.id}`, viewer)
    expect(one.statusCode).toBe(200)
    expect(one.json()).toEqual(created)

    // Moved away, then given a window that has ended: not inside either way.
    const moved = await call('PATCH', `/api/geofences/${created.id}`, operator, {
      name: 'Stadium (match days)',
      geometry: polygon(48.9, 2.35),
    })
    expect(moved.statusCode, moved.body).toBe(200)
    expect(moved.json()).toMatchObject({ name: 'Stadium (match days)', kind: 'no_fly' })
    expect(Date.parse(moved.json<GeofenceView>().updatedAt)).toBeGreaterThanOrEqual(
      Date.parse(created.updatedAt),
    )
    expect(inside()).toEqual([])
    expect(api.geofences.index.zonesAt('fa', 48.905, 2.355, new Date())).toHaveLength(1)
    const ended = await call('PATCH', `/api/geofences/${created.id}`, operator, {
      activeFrom: '2020-01-01T00:00:00Z',
      activeUntil: '2020-01-02T00:00:00+01:00',
    })
    expect(ended.json()).toMatchObject({
      activeFrom: '2020-01-01T00:00:00.000Z',
      activeUntil: '2020-01-01T23:00:00.000Z',
    })
    expect(api.geofences.index.zonesAt('fa', 48.905, 2.355, new Date())).toEqual([])
    expect(
      api.geofences.index.zonesAt('fa', 48.905, 2.355, new Date('2020-01-01T12:00Z')),
    ).toHaveLength(1)
    // null opens the window again.
    const open = await call('PATCH', `/api/geofences/${created.id}`, operator, {
      activeFrom: null,
      activeUntil: null,
    })
    expect(open.json()).toMatchObject({ activeFrom: null, activeUntil: null })
    expect(api.geofences.index.zonesAt('fa', 48.905, 2.355, new Date())).toHaveLength(1)

    const deleted = await call('DELETE', `/api/geofences/${created.id}`, operator)
    expect(deleted.statusCode).toBe(204)
    expect(deleted.body).toBe('')
    expect(api.geofences.index.zonesAt('fa', 48.905, 2.355, new Date())).toEqual([])
    expect((await call('GET', `/api/geofences/${created.id}`, viewer)).statusCode).toBe(404)
    expect((await call('DELETE', `/api/geofences/${created.id}`, operator)).statusCode).toBe(404)
  })

  it("lists the reader's fleets' zones only, by fleet and kind, and hides another fleet's", async () => {
    const mine = await create({
      fleet: 'fa',
      name: 'Park',
      kind: 'area',
      notifyOnEnterLeave: true,
      geometry: polygon(48.8, 2.3),
    })
    const theirs = await create(
      { fleet: 'fb', name: 'Airport', kind: 'no_fly', geometry: polygon(49, 2.5) },
      otherOperator,
    )
    const list = async (url: string, authorization = viewer) =>
      (await call('GET', url, authorization)).json<{ geofences: GeofenceView[] }>().geofences
    const ids = (zones: GeofenceView[]) => zones.map((z) => z.id)
    expect(ids(await list('/api/geofences'))).toContain(mine.id)
    expect(ids(await list('/api/geofences'))).not.toContain(theirs.id)
    expect(ids(await list('/api/geofences?kind=area'))).toEqual([mine.id])
    expect(await list('/api/geofences?kind=no_fly&fleet=fa')).toEqual([])
    expect(await list('/api/geofences?fleet=fb')).toEqual([])
    expect(ids(await list('/api/geofences', otherOperator))).toEqual([theirs.id])

    // Another fleet's zone is not found, for reading and writing alike; and a zone is
    // created only in a fleet the token operates.
    expect((await call('GET', `/api/geofences/${theirs.id}`, viewer)).statusCode).toBe(404)
    const patch = await call('PATCH', `/api/geofences/${theirs.id}`, operator, { name: 'x' })
    expect(patch.statusCode).toBe(404)
    expect((await call('DELETE', `/api/geofences/${theirs.id}`, operator)).statusCode).toBe(404)
    const foreign = await call('POST', '/api/geofences', operator, {
      fleet: 'fb',
      name: 'x',
      kind: 'no_fly',
      geometry: polygon(49, 2.5),
    })
    expect(foreign.statusCode).toBe(403)
    expect((await call('GET', `/api/geofences/${theirs.id}`, otherOperator)).statusCode).toBe(200)
    expect(api.geofences.index.zonesAt('fb', 49.005, 2.505, new Date()).map((z) => z.id)).toEqual([
      theirs.id,
    ])
  })

  it('answers bad input with 400 and what is wrong, and stores nothing of it', async () => {
    const base = { fleet: 'fa', name: 'Bad', kind: 'no_fly', geometry: polygon(48.7, 2.2) }
    const bowtie = {
      type: 'Polygon',
      coordinates: [
        [
          [2.2, 48.7],
          [2.21, 48.71],
          [2.21, 48.7],
          [2.2, 48.71],
          [2.2, 48.7],
        ],
      ],
    }
    const cases: [object, string, string][] = [
      [
        {
          ...base,
          geometry: { ...polygon(48.7, 2.2), coordinates: [square(48.7, 2.2).slice(0, 4)] },
        },
        'bad_request',
        'first position',
      ],
      [{ ...base, geometry: polygon(48.7, 180) }, 'bad_request', 'body.geometry.coordinates'],
      [
        {
          ...base,
          geometry: {
            type: 'LineString',
            coordinates: [
              [0, 0],
              [1, 1],
            ],
          },
        },
        'bad_request',
        'body.geometry',
      ],
      [{ ...base, geometry: bowtie }, 'bad_geometry', 'cross'],
      [{ ...base, kind: 'forbidden' }, 'bad_request', 'body.kind'],
      [{ ...base, name: '' }, 'bad_request', 'body.name'],
      [
        { ...base, activeFrom: '2030-01-02T00:00:00Z', activeUntil: '2030-01-01T00:00:00Z' },
        'bad_range',
        'activeFrom',
      ],
      [{ ...base, activeUntil: 'tomorrow' }, 'bad_request', 'body.activeUntil'],
      [{ ...base, notifyOnEnterLeave: true }, 'bad_request', 'areas'],
    ]
    for (const [body, code, words] of cases) {
      const res = await call('POST', '/api/geofences', operator, body)
      expect(res.statusCode, JSON.stringify(body)).toBe(400)
      const { error } = res.json<{ error: { code: string; message: string } }>()
      expect(error.code, res.body).toBe(code)
      expect(error.message).toContain(words)
    }
    const zone = await create(base)
    for (const [patch, code] of [
      [{}, 'bad_request'],
      [{ fleet: 'fb' }, 'bad_request'],
      [{ geometry: bowtie }, 'bad_geometry'],
      [{ activeFrom: '2030-01-02T00:00:00Z', activeUntil: '2030-01-01T00:00:00Z' }, 'bad_range'],
      [{ kind: 'no_fly', notifyOnEnterLeave: true }, 'bad_request'],
    ] as const) {
      const res = await call('PATCH', `/api/geofences/${zone.id}`, operator, patch)
      expect(res.statusCode, JSON.stringify(patch)).toBe(400)
      expect(res.json<{ error: { code: string } }>().error.code).toBe(code)
    }
    const bad = await call('GET', '/api/geofences?kind=circle', viewer)
    expect(bad.statusCode).toBe(400)
    expect((await call('GET', '/api/geofences/a%2Fb', viewer)).statusCode).toBe(400)
    const stored = (await call('GET', '/api/geofences?fleet=fa', viewer)).json<{
      geofences: GeofenceView[]
    }>().geofences
    expect(stored.filter((z) => z.name === 'Bad').map((z) => z.id)).toEqual([zone.id])
    expect((await call('GET', `/api/geofences/${zone.id}`, viewer)).json()).toEqual(zone)
  })

  it("tells the live stream's clients of the fleet, and them only, that its zones changed", async () => {
    interface Frame {
      type: string
      at: string
      geofences?: string[]
    }
    const listen = async (authorization: string) => {
      const frames: Frame[] = []
      const ws = await api.injectWS(
        '/api/live',
        {},
        {
          onInit: (socket) =>
            socket.on('message', (data: Buffer) =>
              frames.push(JSON.parse(data.toString()) as Frame),
            ),
        },
      )
      ws.send(await liveAuth(authorization))
      await vi.waitFor(() => expect(frames[0]?.type).toBe('snapshot'), WAIT)
      return { ws, frames }
    }
    const mine = await listen(viewer)
    const theirs = await listen(otherOperator)
    const told = (frames: Frame[]) => frames.filter((f) => f.geofences !== undefined)

    const zone = await create({
      fleet: 'fa',
      name: 'Fair',
      kind: 'area',
      geometry: polygon(48.6, 2.1),
    })
    await vi.waitFor(() => expect(told(mine.frames)).toHaveLength(1), WAIT)
    const [notice] = told(mine.frames)
    expect(notice).toMatchObject({ type: 'changes', geofences: ['fa'] })
    // The other fleet's client had the same frame, without the notice.
    await vi.waitFor(() => expect(theirs.frames.some((f) => f.at === notice!.at)).toBe(true), WAIT)
    expect(told(theirs.frames)).toEqual([])

    // A change and a delete are told too.
    expect(
      (await call('PATCH', `/api/geofences/${zone.id}`, operator, { name: 'Fair 2' })).statusCode,
    ).toBe(200)
    await vi.waitFor(() => expect(told(mine.frames)).toHaveLength(2), WAIT)
    expect((await call('DELETE', `/api/geofences/${zone.id}`, operator)).statusCode).toBe(204)
    await vi.waitFor(() => expect(told(mine.frames)).toHaveLength(3), WAIT)
    expect(told(theirs.frames)).toEqual([])
    mine.ws.terminate()
    theirs.ws.terminate()
  })
})
