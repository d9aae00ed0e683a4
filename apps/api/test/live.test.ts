import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { Fleet } from '@skyline/drone-sim'
import type { Database } from '../src/db/client.ts'
import { stations as stationsTable } from '../src/db/schema.ts'
import type { IngestItem } from '../src/ingest/items.ts'
import { FRAME_MS, KEEPALIVE_MS } from '../src/plugins/app/live.ts'
import { signDeviceToken } from '@skyline/auth'
import {
  DATABASES,
  SECRET,
  WAIT,
  buildApi,
  get,
  liveAuth,
  stationRow,
  startBroker,
  testFleet,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'

interface Frame {
  type: string
  drones: {
    id: string
    position?: { lat: number; lon: number }
    state?: string
    lastSeenAt?: string
  }[]
  stations?: unknown[]
  deliveries?: { id: string; status: string }[]
}

describe('GET /api/live', () => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance
  let fleet: Fleet

  beforeEach(async () => {
    broker = await startBroker()
    database = await DATABASES[0]![1]()
    api = await buildApi(broker.url, database)
    fleet = await Fleet.start(
      testFleet(broker.url, { drones: 3, rateHz: 10, timeScale: 50, patrol: true, seed: 2 }),
    )
    await vi.waitFor(async () => {
      const res = await get(api, '/api/drones')
      expect(res.json<{ drones: unknown[] }>().drones).toHaveLength(3)
    }, WAIT)
  })
  afterEach(async () => {
    await fleet.stop()
    await api.close()
    await database.close()
    await broker.close()
  })

  async function connect() {
    const frames: Frame[] = []
    const arrivals: number[] = []
    // Listening from the start (onInit): the snapshot follows the upgrade at once.
    const ws = await api.injectWS(
      '/api/live',
      {},
      {
        onInit: (socket) =>
          socket.on('message', (data: Buffer) => {
            frames.push(JSON.parse(data.toString()) as Frame)
            arrivals.push(Date.now())
          }),
      },
    )
    ws.send(await liveAuth())
    return { ws, frames, arrivals }
  }

  it('sends a snapshot, then batched changes at most 4 times a second', async () => {
    const { ws, frames, arrivals } = await connect()
    await vi.waitFor(() => expect(frames[0]?.type).toBe('snapshot'), WAIT)
    expect(frames[0]!.drones.map((d) => d.id).sort()).toEqual(['drone-1', 'drone-2', 'drone-3'])
    // Telemetry arrives 30 times a second in all; frames come at most every FRAME_MS.
    await vi.waitFor(
      () => expect(frames.filter((f) => f.type === 'changes').length).toBeGreaterThanOrEqual(6),
      WAIT,
    )
    const changes = arrivals.slice(1)
    const gaps = changes.slice(1).map((t, i) => t - changes[i]!)
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(FRAME_MS * 0.8)
    const moved = frames
      .filter((f) => f.type === 'changes')
      .flatMap((f) => f.drones)
      .filter((d) => d.position !== undefined)
    expect(moved.length).toBeGreaterThan(0)
    // Each point says when the api heard the drone (the map's "signal lost hh:mm").
    for (const d of moved) expect(Date.parse(d.lastSeenAt ?? '')).toBeGreaterThan(0)
    ws.terminate()
  })

  it('shows a delivery created and cancelled over REST', async () => {
    // Issue 15: REST wrote deliveries without telling the live stream; only the
    // dispatcher's changes reached the map.
    const { ws, frames } = await connect()
    await vi.waitFor(() => expect(frames[0]?.type).toBe('snapshot'), WAIT)
    // Stations of a fleet with no drone: nothing but REST changes this delivery.
    const at = new Date()
    await database.db
      .insert(stationsTable)
      .values([stationRow('quiet', 's1', 48.85, at), stationRow('quiet', 's2', 48.86, at)])
    const authorization = `Bearer ${await signDeviceToken(SECRET, { role: 'service', sub: 'ops' })}`
    const created = await api.inject({
      method: 'POST',
      url: '/api/deliveries',
      headers: { authorization },
      payload: {
        fleet: 'quiet',
        pickupStationId: 's1',
        dropoffStationId: 's2',
        payloadKg: 1,
      },
    })
    expect(created.statusCode).toBe(201)
    const { id } = created.json<{ id: string }>()
    const seen = (status?: string) =>
      frames.some(
        (f) =>
          f.type === 'changes' &&
          f.deliveries?.some((d) => d.id === id && (status === undefined || d.status === status)),
      )
    await vi.waitFor(() => expect(seen()).toBe(true), WAIT)
    const cancelled = await api.inject({
      method: 'POST',
      url: `/api/deliveries/${id}/cancel`,
      headers: { authorization },
    })
    expect(cancelled.statusCode).toBe(200)
    await vi.waitFor(() => expect(seen('cancelled')).toBe(true), WAIT)
    ws.terminate()
  })

  it('leaves out drones outside the bounds a client sends', async () => {
    const { ws, frames } = await connect()
    await vi.waitFor(() => expect(frames[0]?.type).toBe('snapshot'), WAIT)
    ws.send(JSON.stringify({ type: 'bounds', south: -10, west: -10, north: -9, east: -9 }))
    const from = frames.length + 2 // frames already on their way may predate the bounds
    await vi.waitFor(() => expect(frames.length).toBeGreaterThan(from + 4), WAIT)
    const positioned = frames
      .slice(from)
      .flatMap((f) => f.drones)
      .filter((d) => d.position !== undefined)
    expect(positioned).toEqual([])
    ws.send('not json')
    await vi.waitFor(() => expect(frames.some((f) => f.type === 'error')).toBe(true), WAIT)
    ws.terminate()
  })
})

describe('GET /api/live after its last client left', () => {
  it('sends a new client no change from before, which could undo its snapshot', async () => {
    const broker = await startBroker()
    const database = await DATABASES[0]![1]()
    const api = await buildApi(broker.url, database)
    const telemetry = (droneId: string, state: 'charging' | 'en_route'): IngestItem => ({
      kind: 'telemetry',
      fleetId: 'f1',
      droneId,
      receivedAt: new Date(),
      msg: {
        v: 1,
        ts: Date.now(),
        seq: 1,
        lat: 47.37,
        lon: 8.54,
        altM: 0,
        speedMps: 0,
        headingDeg: 0,
        batteryPct: 50,
        state,
      },
    })
    const connect = async () => {
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
      ws.send(await liveAuth())
      await vi.waitFor(() => expect(frames[0]?.type).toBe('snapshot'), WAIT)
      return { ws, frames }
    }
    try {
      // A change waits for its frame when the only client goes; while nobody listens,
      // what follows (the drone's will) is not recorded.
      const first = await connect()
      api.live.committed([telemetry('d1', 'charging')])
      first.ws.terminate()
      await vi.waitFor(() => expect(api.live.size).toBe(0), WAIT)
      const second = await connect()
      api.live.committed([telemetry('d2', 'en_route')])
      await vi.waitFor(
        () => expect(second.frames.flatMap((f) => f.drones).map((d) => d.id)).toContain('d2'),
        WAIT,
      )
      expect(second.frames.flatMap((f) => f.drones).map((d) => d.id)).not.toContain('d1')
      second.ws.terminate()
    } finally {
      await api.close()
      await database.close()
      await broker.close()
    }
  })
})

describe('GET /api/live on a quiet fleet', () => {
  it('still sends an empty frame every KEEPALIVE_MS, so a client can tell a dead stream', async () => {
    const broker = await startBroker()
    const database = await DATABASES[0]![1]()
    const api = await buildApi(broker.url, database)
    try {
      const frames: { type: string; drones?: unknown[] }[] = []
      const ws = await api.injectWS(
        '/api/live',
        {},
        {
          onInit: (socket) =>
            socket.on('message', (data: Buffer) =>
              frames.push(JSON.parse(data.toString()) as { type: string }),
            ),
        },
      )
      ws.send(await liveAuth())
      await vi.waitFor(() => expect(frames[0]?.type).toBe('snapshot'), WAIT)
      await vi.waitFor(() => expect(frames[1]).toMatchObject({ type: 'changes', drones: [] }), {
        timeout: KEEPALIVE_MS + 2_000,
        interval: 25,
      })
      ws.terminate()
    } finally {
      await api.close()
      await database.close()
      await broker.close()
    }
  })
})

describe('GET /api/live from a browser', () => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance | undefined
  beforeEach(async () => {
    broker = await startBroker()
    database = await DATABASES[0]![1]()
  })
  afterEach(async () => {
    await api?.close()
    api = undefined
    await database.close()
    await broker.close()
  })
  const open = async (headers: Record<string, string>) => {
    const ws = await api!.injectWS('/api/live', { headers })
    ws.terminate()
    return 'open'
  }

  it('lets in pages of its own addresses, refuses any other, and clients that send no Origin', async () => {
    api = await buildApi(broker.url, database) // HTTP_PORT 3000, HOST 0.0.0.0
    expect(await open({ host: 'localhost:3000', origin: 'http://localhost:3000' })).toBe('open')
    expect(await open({ host: '127.0.0.1:3000', origin: 'http://127.0.0.1:3000' })).toBe('open')
    expect(await open({ host: 'localhost:3000' })).toBe('open') // a script, not a browser
    await expect(open({ host: 'localhost:3000', origin: 'https://evil.example' })).rejects.toThrow(
      /403/,
    )
    await expect(open({ host: 'localhost:3000', origin: 'http://localhost:3001' })).rejects.toThrow(
      /403/,
    )
  })

  it('refuses a page on a DNS-rebinding name, though its Origin and Host agree', async () => {
    // evil.example resolves to the api's address: the page's requests carry its name.
    api = await buildApi(broker.url, database)
    await expect(
      open({ host: 'evil.example:3000', origin: 'http://evil.example:3000' }),
    ).rejects.toThrow(/403/)
    const metrics = (await api.inject({ method: 'GET', url: '/metrics' })).body
    expect(metrics).toMatch(/^skyline_live_refused_total\{reason="origin"\} 1$/m)
  })

  it('lets in only the origins of PUBLIC_ORIGIN when it is set', async () => {
    api = await buildApi(broker.url, database, {
      PUBLIC_ORIGIN: 'https://skyline.example,http://ops.example:8080',
    })
    expect(await open({ host: 'skyline.example', origin: 'https://skyline.example' })).toBe('open')
    expect(await open({ host: 'ops.example:8080', origin: 'http://ops.example:8080' })).toBe('open')
    await expect(open({ host: 'localhost:3000', origin: 'http://localhost:3000' })).rejects.toThrow(
      /403/,
    )
  })
})
