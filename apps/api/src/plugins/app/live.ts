import websocket from '@fastify/websocket'
import type { WebSocket } from '@fastify/websocket'
import { inArray } from 'drizzle-orm'
import fp from 'fastify-plugin'
import { z } from 'zod'
import { deliveries } from '../../db/schema.ts'
import { ApiError } from '../../errors.ts'
import type { IngestItem } from '../../ingest/items.ts'
import { deliveryView } from '../../routes/api/deliveries.ts'
import { droneView, stationView } from '../../routes/api/views.ts'

declare module 'fastify' {
  interface FastifyInstance {
    live: LiveHub
  }
}

/** Changes go out at most this often, ms: 4 frames a second. */
export const FRAME_MS = 250
/** A quiet fleet still gets an (empty) frame this often, ms: clients can tell a dead stream. */
export const KEEPALIVE_MS = 5_000
/** Sockets are pinged this often, ms; one that has not answered the last ping is closed. */
const PING_MS = 15_000
/** A client this far behind (bytes queued on its socket) is closed; it reconnects to a snapshot. */
const MAX_BUFFERED_BYTES = 8 * 2 ** 20

/** A client's area of interest; drones outside it are left out of its frames. */
const BoundsSchema = z.object({
  type: z.literal('bounds'),
  south: z.number().min(-90).max(90),
  west: z.number().min(-180).max(180),
  north: z.number().min(-90).max(90),
  east: z.number().min(-180).max(180),
})
type Bounds = z.infer<typeof BoundsSchema>

interface DroneChange {
  id: string
  fleetId: string
  [field: string]: unknown
}

/**
 * The live stream: each client gets a snapshot, then the changes committed since,
 * batched into at most one frame per FRAME_MS (drone positions, states, station
 * status, deliveries with their ETAs). Fed by the ingest after each commit and by
 * the dispatcher.
 */
export class LiveHub {
  /** Each client's bounds, and the frames held back until its snapshot is out. */
  private readonly clients = new Map<WebSocket, { bounds?: Bounds; held?: object[] }>()
  private drones = new Map<string, DroneChange>()
  private stations = new Set<string>()
  private deliveryIds = new Set<string>()
  private lastSentAt = Date.now()
  private readonly alive = new WeakSet<WebSocket>()

  /** Records what a committed batch changed. */
  committed(items: IngestItem[]): void {
    if (this.clients.size === 0) return
    for (const item of items) {
      switch (item.kind) {
        case 'telemetry': {
          const { msg } = item
          this.mergeDrone(item.fleetId, item.droneId, {
            position: { lat: msg.lat, lon: msg.lon, altM: msg.altM },
            speedMps: msg.speedMps,
            headingDeg: msg.headingDeg,
            batteryPct: msg.batteryPct,
            state: msg.state,
            deliveryId: msg.deliveryId ?? null,
            positionAt: new Date(msg.ts).toISOString(),
          })
          if (msg.deliveryId !== undefined) this.deliveryIds.add(msg.deliveryId)
          break
        }
        case 'drone-status':
          this.mergeDrone(item.fleetId, item.droneId, {
            online: item.msg.online,
            state: item.msg.online ? item.msg.state : 'offline',
            ...(!item.msg.online && {
              onlineChangedAt: item.receivedAt.toISOString(),
              offlineReason: item.msg.reason ?? null,
            }),
          })
          break
        case 'drone-event':
          if (item.msg.deliveryId !== undefined) this.deliveryIds.add(item.msg.deliveryId)
          break
        case 'delivery-request':
          this.deliveryIds.add(item.msg.id)
          break
        case 'station-status':
          this.stations.add(`${item.fleetId}/${item.stationId}`)
          break
        case 'rejected':
          break
      }
    }
  }

  droneStale(fleetId: string, id: string): void {
    if (this.clients.size > 0) this.mergeDrone(fleetId, id, { state: 'stale' })
  }

  deliveryChanged(id: string): void {
    if (this.clients.size > 0) this.deliveryIds.add(id)
  }

  add(socket: WebSocket): void {
    this.clients.set(socket, { held: [] })
    this.alive.add(socket)
    socket.on('pong', () => this.alive.add(socket))
    socket.on('message', (data: Buffer) => {
      const parsed = BoundsSchema.safeParse(safeJson(data.toString()))
      const client = this.clients.get(socket)
      if (parsed.success && client !== undefined) client.bounds = parsed.data
      else
        socket.send(
          JSON.stringify({
            type: 'error',
            message: 'send {"type":"bounds","south","west","north","east"}',
          }),
        )
    })
    socket.on('close', () => this.forget(socket))
  }

  /** Takes what changed since the last frame. */
  drain(): { drones: DroneChange[]; stations: string[]; deliveryIds: string[] } {
    const out = {
      drones: [...this.drones.values()],
      stations: [...this.stations],
      deliveryIds: [...this.deliveryIds],
    }
    this.drones = new Map()
    this.stations = new Set()
    this.deliveryIds = new Set()
    return out
  }

  remove(socket: WebSocket): void {
    this.forget(socket)
  }

  /** Frames for a new client wait for its snapshot: none is lost, none comes first. */
  snapshotSent(socket: WebSocket): void {
    const client = this.clients.get(socket)
    if (client?.held === undefined) return
    for (const frame of client.held) socket.send(JSON.stringify(frame))
    client.held = undefined
  }

  /** Pings every client; closes those that did not answer the previous ping. */
  ping(): void {
    for (const socket of this.clients.keys()) {
      if (!this.alive.has(socket)) {
        this.forget(socket)
        socket.terminate()
        continue
      }
      this.alive.delete(socket)
      socket.ping()
    }
  }

  /** Whether a quiet stream is due its keepalive frame. */
  get quietTooLong(): boolean {
    return Date.now() - this.lastSentAt >= KEEPALIVE_MS
  }

  send(frame: { drones: DroneChange[]; [k: string]: unknown }): void {
    this.lastSentAt = Date.now()
    for (const [socket, client] of this.clients) {
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
        this.forget(socket)
        socket.close(1013, 'too far behind: reconnect for a fresh snapshot')
        continue
      }
      const { bounds } = client
      const drones =
        bounds === undefined ? frame.drones : frame.drones.filter((d) => inside(d, bounds))
      if (client.held !== undefined) client.held.push({ ...frame, drones })
      else socket.send(JSON.stringify({ ...frame, drones }))
    }
  }

  get size(): number {
    return this.clients.size
  }

  /**
   * Drops a client. With none left, the changes waiting for the next frame go too: no
   * change is recorded while nobody listens, so a later one (a drone's will) would be
   * missing from them, and the next client would get them after its snapshot, which
   * already holds what they say, and the state they undo (a drone shown flying again
   * after it went offline).
   */
  private forget(socket: WebSocket): void {
    this.clients.delete(socket)
    if (this.clients.size === 0) this.drain()
  }

  private mergeDrone(fleetId: string, id: string, change: Record<string, unknown>): void {
    const key = `${fleetId}/${id}`
    this.drones.set(key, { ...(this.drones.get(key) ?? { id, fleetId }), ...change })
  }
}

function inside(d: DroneChange, b: Bounds): boolean {
  const p = d.position as { lat: number; lon: number } | undefined
  // A change without a position (a status) goes to everyone: the map must learn it.
  if (p === undefined) return true
  const lonInside =
    b.west <= b.east ? p.lon >= b.west && p.lon <= b.east : p.lon >= b.west || p.lon <= b.east
  return p.lat >= b.south && p.lat <= b.north && lonInside
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host
  } catch {
    return false
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

export default fp(
  async (fastify) => {
    const hub = new LiveHub()
    fastify.decorate('live', hub)
    await fastify.register(websocket, { options: { maxPayload: 4096 } })

    fastify.get(
      '/api/live',
      {
        websocket: true,
        schema: { hide: true },
        // A WebSocket has no CORS: without this, any web page an operator visits could
        // read the fleet through their browser. Browsers send Origin; other clients
        // (scripts, the tests) send none and are let through.
        preValidation: async (req) => {
          const origin = req.headers.origin
          if (origin !== undefined && !sameOrigin(origin, req.headers.host)) {
            throw new ApiError(
              403,
              'forbidden_origin',
              `origin ${origin} may not open the live stream`,
            )
          }
        },
      },
      async (socket) => {
        hub.add(socket)
        try {
          const now = new Date()
          const [drones, stations, unfinished] = await Promise.all([
            fastify.fleet.listDrones(),
            fastify.fleet.listStations(),
            fastify.deliveries.unfinished(),
          ])
          socket.send(
            JSON.stringify({
              type: 'snapshot',
              at: now.toISOString(),
              drones: drones.map((d) => droneView(d, now, fastify.config.STALE_AFTER_S)),
              stations: stations.map(stationView),
              deliveries: unfinished.map(deliveryView),
            }),
          )
          hub.snapshotSent(socket)
        } catch (err) {
          fastify.log.warn({ err }, 'live snapshot failed')
          hub.remove(socket)
          socket.close(1011, 'snapshot failed')
        }
      },
    )

    const frame = async () => {
      if (hub.size === 0) return
      const changes = hub.drain()
      if (changes.drones.length + changes.stations.length + changes.deliveryIds.length === 0) {
        if (hub.quietTooLong) {
          hub.send({
            type: 'changes',
            at: new Date().toISOString(),
            drones: [],
            stations: [],
            deliveries: [],
          })
        }
        return
      }
      const db = fastify.database.db
      const [stationRows, deliveryRows] = await Promise.all([
        changes.stations.length > 0 ? fastify.fleet.listStations() : Promise.resolve([]),
        changes.deliveryIds.length > 0
          ? db.select().from(deliveries).where(inArray(deliveries.id, changes.deliveryIds))
          : Promise.resolve([]),
      ])
      const wanted = new Set(changes.stations)
      hub.send({
        type: 'changes',
        at: new Date().toISOString(),
        drones: changes.drones,
        stations: stationRows.filter((s) => wanted.has(`${s.fleetId}/${s.id}`)).map(stationView),
        deliveries: deliveryRows.map(deliveryView),
      })
    }
    // Each frame is scheduled when the last is out: never two within FRAME_MS, even
    // when the database is slow to answer.
    let timer: NodeJS.Timeout | undefined
    let closed = false
    const loop = () => {
      timer = setTimeout(() => {
        frame()
          .catch((err: unknown) => fastify.log.warn({ err }, 'live frame failed'))
          .finally(() => closed || loop())
      }, FRAME_MS)
    }
    loop()
    const pinger = setInterval(() => hub.ping(), PING_MS)
    fastify.addHook('onClose', async () => {
      closed = true
      clearTimeout(timer)
      clearInterval(pinger)
    })
  },
  { name: 'live', dependencies: ['fleet-repository', 'delivery-repository', 'database'] },
)
