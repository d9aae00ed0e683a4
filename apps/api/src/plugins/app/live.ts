import type { Duplex } from 'node:stream'
import websocket from '@fastify/websocket'
import type { WebSocket } from '@fastify/websocket'
import fp from 'fastify-plugin'
import { z } from 'zod'
import { DEFAULT_CLOCK_TOLERANCE_S, oidcOptions } from '@skyline/auth'
import type { Alert } from '@skyline/schemas'
import { alertOf } from '../../alerts/repository.ts'
import { inScope, scopeKey } from '../../auth/principal.ts'
import type { FleetScope, Principal } from '../../auth/principal.ts'
import { liveOrigins } from '../../config.ts'
import { ApiError } from '../../errors.ts'
import type { IngestItem } from '../../ingest/items.ts'
import { deliveryView, droneView, stationView } from '../../views.ts'
import { LiveClient } from './live-client.ts'
import type { FlowLimits } from './live-client.ts'
import { SnapshotCache } from './live-snapshot.ts'
import type { ApiMetrics } from './metrics.ts'

declare module 'fastify' {
  interface FastifyInstance {
    live: LiveHub
  }
}

/** Changes go out at most this often, ms: 4 frames a second. */
export const FRAME_MS = 250
/** A quiet fleet still gets an (empty) frame this often, ms: clients can tell a dead stream. */
export const KEEPALIVE_MS = 5_000
/** A refused client is told to try again after this long, s (Retry-After). */
const RETRY_AFTER_S = 5

/** A client's area of interest; drones outside it are left out of its frames. */
const BoundsSchema = z.object({
  type: z.literal('bounds'),
  south: z.number().min(-90).max(90),
  west: z.number().min(-180).max(180),
  north: z.number().min(-90).max(90),
  east: z.number().min(-180).max(180),
})
type Bounds = z.infer<typeof BoundsSchema>

/** A client's first message: who it is (issue 16: a token in the URL would be in logs). */
const AuthSchema = z.object({ type: z.literal('auth'), token: z.string().min(1).max(16_384) })

/**
 * Close codes of a client that did not sign in (RFC 6455 §7.4.2: 4000-4999 are the
 * application's): 401 and 403 as HTTP says them, so the map knows to ask for a token.
 */
export const CLOSE_UNAUTHORIZED = 4401
export const CLOSE_FORBIDDEN = 4403

interface DroneChange {
  id: string
  fleetId: string
  [field: string]: unknown
}

export interface LiveLimits extends FlowLimits {
  /** Clients at once, at most (LIVE_MAX_CLIENTS). */
  maxClients: number
  /** Clients from one remote address at once, at most (LIVE_MAX_CLIENTS_PER_ADDRESS). */
  maxPerAddress: number
}

/** Why a client is not let in: HTTP status before the upgrade, the metric's reason. */
export interface Refusal {
  status: 503 | 429
  reason: 'full' | 'address_full'
  message: string
}

/**
 * The live stream: each client gets a snapshot, then the changes committed since,
 * batched into at most one frame per FRAME_MS (drone positions, states, station
 * status, deliveries with their ETAs). Fed by the ingest after each commit, and with
 * deliveries by the delivery changes stream (whoever changed them); on an instance that
 * does not lead, by what the others tell (cluster/change-feed.ts).
 */
export class LiveHub {
  private readonly clients = new Map<WebSocket, LiveClient<Bounds>>()
  private readonly perAddress = new Map<string, number>()
  private drones = new Map<string, DroneChange>()
  private stations = new Set<string>()
  private deliveryIds = new Set<string>()
  /** Fleets whose zones changed (here or told by a peer): the map reads them again. */
  private geofenceFleets = new Set<string>()
  /** Drones another instance changed (`fleetId/id`): read whole from the database. */
  private dronesToRead = new Set<string>()
  /** Alerts this instance changed, as they are now (the latest change of each). */
  private alerts = new Map<string, Alert>()
  /** Alerts another instance changed: read from the database. */
  private alertsToRead = new Set<string>()
  private lastSentAt = Date.now()
  private pingSeq = 0
  /**
   * Moves when changes are taken for a frame, or lost (the last client left): a snapshot
   * read in one version is good for a client added in the same (see SnapshotCache).
   */
  private versionNo = 0

  constructor(
    private readonly limits: LiveLimits,
    private readonly metrics: ApiMetrics,
  ) {}

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
            lastSeenAt: item.receivedAt.toISOString(),
          })
          break
        }
        case 'drone-status':
          this.mergeDrone(item.fleetId, item.droneId, {
            online: item.msg.online,
            state: item.msg.online ? item.msg.state : 'offline',
            ...(item.msg.online && { lastSeenAt: item.receivedAt.toISOString() }),
            ...(!item.msg.online && {
              onlineChangedAt: item.receivedAt.toISOString(),
              offlineReason: item.msg.reason ?? null,
            }),
          })
          break
        case 'drone-event':
        case 'delivery-request':
          break // deliveries come through their own stream: deliveryChanged
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

  /** An alert this instance opened, acknowledged or resolved (alerts/service.ts). */
  alertChanged(alert: Alert): void {
    if (this.clients.size > 0) this.alerts.set(alert.id, alert)
  }

  /** A fleet's zones changed (created, changed or deleted; geofence/service.ts). */
  geofencesChanged(fleetId: string): void {
    if (this.clients.size > 0) this.geofenceFleets.add(fleetId)
  }

  /**
   * Another instance committed these: drones and stations by `fleetId/id`, deliveries,
   * alerts, fleets whose zones changed.
   */
  toldByPeer(notice: {
    drones: string[]
    stations: string[]
    deliveries: string[]
    alerts: string[]
    geofences: string[]
  }): void {
    if (this.clients.size === 0) return
    for (const key of notice.drones) this.dronesToRead.add(key)
    for (const key of notice.stations) this.stations.add(key)
    for (const id of notice.deliveries) this.deliveryIds.add(id)
    for (const id of notice.alerts) this.alertsToRead.add(id)
    for (const fleetId of notice.geofences) this.geofenceFleets.add(fleetId)
  }

  get version(): number {
    return this.versionNo
  }

  /** Why a client from `address` may not come in now, if it may not. */
  refusal(address: string): Refusal | undefined {
    if (this.clients.size >= this.limits.maxClients) {
      return {
        status: 503,
        reason: 'full',
        message: `the live stream has its ${this.limits.maxClients} clients`,
      }
    }
    if ((this.perAddress.get(address) ?? 0) >= this.limits.maxPerAddress) {
      return {
        status: 429,
        reason: 'address_full',
        message: `${this.limits.maxPerAddress} live clients from ${address} already`,
      }
    }
    return undefined
  }

  /**
   * Adds a client, not signed in yet: it counts against the caps, and is sent nothing
   * until `admit`. Its messages go to `signIn` until then, and are bounds after.
   * `raw`: the TCP socket, if any.
   */
  add(
    socket: WebSocket,
    address: string,
    raw: Duplex | undefined,
    signIn: (message: unknown) => void,
  ): void {
    const client = new LiveClient<Bounds>(socket, address, raw, this.limits, Date.now())
    this.clients.set(socket, client)
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1)
    this.metrics.liveClients.set(this.clients.size)
    socket.on('pong', (data: Buffer) => client.pong(data))
    socket.on('message', (data: Buffer) => {
      const message = safeJson(data.toString())
      if (client.scope === undefined) signIn(message)
      else this.receive(socket, message)
    })
    socket.on('close', () => this.forget(socket))
  }

  /**
   * A signed-in client: from the next frame on, it gets the changes of `fleets`; frames
   * wait for its snapshot (sendSnapshot), which is read after this.
   */
  admit(socket: WebSocket, fleets: FleetScope): void {
    const client = this.clients.get(socket)
    if (client !== undefined) client.scope = { fleets, key: scopeKey(fleets) }
  }

  /** A signed-in client's message: its bounds. */
  receive(socket: WebSocket, message: unknown): void {
    const client = this.clients.get(socket)
    if (client === undefined) return
    const parsed = BoundsSchema.safeParse(message)
    if (parsed.success) client.bounds = parsed.data
    else
      client.reply(
        JSON.stringify({
          type: 'error',
          message: 'send {"type":"bounds","south","west","north","east"}',
        }),
      )
  }

  /** Takes what changed since the last frame. */
  drain(): {
    drones: DroneChange[]
    dronesToRead: string[]
    stations: string[]
    deliveryIds: string[]
    alerts: Alert[]
    alertsToRead: string[]
    geofences: string[]
  } {
    const out = {
      drones: [...this.drones.values()],
      dronesToRead: [...this.dronesToRead].filter((key) => !this.drones.has(key)),
      stations: [...this.stations],
      deliveryIds: [...this.deliveryIds],
      alerts: [...this.alerts.values()],
      alertsToRead: [...this.alertsToRead].filter((id) => !this.alerts.has(id)),
      geofences: [...this.geofenceFleets],
    }
    // Zones are not in the snapshot: a notice about them leaves a snapshot good.
    const n =
      out.drones.length +
      out.dronesToRead.length +
      out.stations.length +
      out.deliveryIds.length +
      out.alerts.length +
      out.alertsToRead.length
    if (n > 0) this.versionNo++
    this.drones = new Map()
    this.dronesToRead = new Set()
    this.stations = new Set()
    this.deliveryIds = new Set()
    this.alerts = new Map()
    this.alertsToRead = new Set()
    this.geofenceFleets = new Set()
    return out
  }

  remove(socket: WebSocket): void {
    this.forget(socket)
  }

  /** Closes a client whose token expired (issue 16), its place given back at once. */
  expire(socket: WebSocket): void {
    const client = this.clients.get(socket)
    if (client === undefined) return
    this.metrics.liveDropped.inc({ reason: 'token_expired' })
    this.forget(socket)
    client.close(CLOSE_UNAUTHORIZED, 'token expired: sign in again')
  }

  /** Sends a new client its snapshot (a buffer shared with others), then the frames held meanwhile. */
  sendSnapshot(socket: WebSocket, snapshot: Buffer): void {
    this.clients.get(socket)?.sendSnapshot(snapshot)
  }

  /**
   * Before each frame: drops the clients that read too slowly (issue 14: 500 that never
   * read held 1 to 2 GB of the api's memory and stalled everyone's frames for seconds).
   * Before, so that the frame about to go does not count against the budget: what is
   * unread then is what was sent a frame or more ago.
   */
  sweep(now = Date.now()): void {
    for (const [socket, client] of this.clients) {
      const reason = client.verdict(now)
      if (reason === undefined) continue
      this.metrics.liveDropped.inc({ reason })
      this.forget(socket)
      client.close(
        1008,
        reason === 'lag'
          ? `too slow: a ping unanswered for ${this.limits.maxLagMs} ms; reconnect`
          : `too slow: over ${this.limits.budgetBytes} bytes unread; reconnect`,
      )
    }
  }

  /** After each frame: pings the clients; their pongs say how much they have read. */
  ping(now = Date.now()): void {
    const payload = Buffer.alloc(4)
    payload.writeUInt32BE(this.pingSeq)
    for (const client of this.clients.values()) client.ping(this.pingSeq, payload, now)
    this.pingSeq = (this.pingSeq + 1) >>> 0
  }

  /** Whether a quiet stream is due its keepalive frame. */
  get quietTooLong(): boolean {
    return Date.now() - this.lastSentAt >= KEEPALIVE_MS
  }

  /**
   * Sends a frame to every signed-in client, with only its fleets' drones, stations and
   * deliveries (issue 16), serialised once per distinct fleets and bounds: the clients
   * share the buffers (issue 14: a copy each, for 500 clients, was most of the api's time
   * and memory). Most clients see the same fleets, so this stays a handful of buffers.
   */
  send(frame: Frame): void {
    this.lastSentAt = Date.now()
    const serialised = new Map<string, Buffer>()
    const scoped = new Map<string, Frame>()
    for (const client of this.clients.values()) {
      const { bounds, scope } = client
      if (scope === undefined) continue
      const key = `${scope.key}|${
        bounds === undefined ? '' : `${bounds.south},${bounds.west},${bounds.north},${bounds.east}`
      }`
      let data = serialised.get(key)
      if (data === undefined) {
        let mine = scoped.get(scope.key)
        if (mine === undefined) {
          mine = scope.fleets === '*' ? frame : onlyFleets(frame, scope.fleets)
          scoped.set(scope.key, mine)
        }
        const drones =
          bounds === undefined ? mine.drones : mine.drones.filter((d) => inside(d, bounds))
        data = Buffer.from(JSON.stringify({ ...mine, drones }))
        serialised.set(key, data)
      }
      client.send(data)
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
    const client = this.clients.get(socket)
    if (client === undefined) return
    this.clients.delete(socket)
    const left = (this.perAddress.get(client.address) ?? 1) - 1
    if (left === 0) this.perAddress.delete(client.address)
    else this.perAddress.set(client.address, left)
    this.metrics.liveClients.set(this.clients.size)
    if (this.clients.size === 0) {
      this.drain()
      this.versionNo++ // nothing is recorded until the next client: no snapshot stays good
    }
  }

  private mergeDrone(fleetId: string, id: string, change: Record<string, unknown>): void {
    const key = `${fleetId}/${id}`
    // Merged in place rather than copied for each message (the copies were most of what
    // the stream allocated): drain() hands the objects out with a new map, so none is
    // changed after it went into a frame.
    const pending = this.drones.get(key)
    if (pending === undefined) this.drones.set(key, { id, fleetId, ...change })
    else Object.assign(pending, change)
  }
}

/**
 * A changes frame: drones' changed fields, stations', deliveries' and alerts' whole views,
 * and (only when any) the fleets whose zones changed.
 */
interface Frame {
  type: 'changes'
  at: string
  drones: DroneChange[]
  stations: { fleetId: string }[]
  deliveries: { fleetId: string }[]
  alerts: { fleetId: string }[]
  geofences?: string[]
}

function onlyFleets(frame: Frame, fleets: FleetScope): Frame {
  const mine = (x: { fleetId: string }) => inScope(fleets, x.fleetId)
  const { geofences, ...rest } = frame
  const zones = geofences?.filter((f) => inScope(fleets, f)) ?? []
  return {
    ...rest,
    drones: frame.drones.filter(mine),
    stations: frame.stations.filter(mine),
    deliveries: frame.deliveries.filter(mine),
    alerts: frame.alerts.filter(mine),
    ...(zones.length > 0 && { geofences: zones }),
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

/** An Origin header as `URL.origin` writes it ('null' and the malformed stay as they are). */
function normaliseOrigin(origin: string): string {
  return URL.canParse(origin) ? new URL(origin).origin : origin
}

/**
 * Calls `expire` at `expiresAt` (epoch ms) unless `socket` has closed by then. setTimeout
 * holds at most 2^31-1 ms (24.8 days): a later expiry re-arms on the way.
 */
function closeAtExpiry(socket: WebSocket, expiresAt: number, expire: () => void): void {
  let timer: NodeJS.Timeout | undefined
  const arm = () => {
    timer = setTimeout(
      () => (Date.now() < expiresAt ? arm() : expire()),
      Math.min(Math.max(0, expiresAt - Date.now()), 2 ** 31 - 1),
    )
    timer.unref()
  }
  arm()
  socket.once('close', () => clearTimeout(timer))
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
    const { config, metrics } = fastify
    // An OIDC token is good up to this long past its exp (the clock skew with the issuer), ms.
    const oidcGraceMs = (oidcOptions(config)?.clockToleranceS ?? DEFAULT_CLOCK_TOLERANCE_S) * 1000
    const hub = new LiveHub(
      {
        maxClients: config.LIVE_MAX_CLIENTS,
        maxPerAddress: config.LIVE_MAX_CLIENTS_PER_ADDRESS,
        budgetBytes: config.LIVE_SEND_BUDGET_BYTES,
        maxLagMs: config.LIVE_MAX_LAG_MS,
      },
      metrics,
    )
    fastify.decorate('live', hub)
    const unsubscribe = fastify.lifecycle.changes.subscribe((id) => hub.deliveryChanged(id))
    const unsubscribeAlerts = fastify.alerts.service.onChange((alert) => hub.alertChanged(alert))
    const unsubscribeZones = fastify.geofences.onChange((fleetId) => hub.geofencesChanged(fleetId))
    await fastify.register(websocket, { options: { maxPayload: 4096 } })

    const snapshots = new SnapshotCache(async (fleets) => {
      metrics.liveSnapshots.inc()
      const now = new Date()
      const [drones, stations, unfinished, alerts] = await Promise.all([
        fastify.fleet.listDrones(fleets),
        fastify.fleet.listStations(fleets),
        fastify.deliveries.unfinished(fleets),
        fastify.alerts.service.repository.unresolved(fleets),
      ])
      const snapshot = {
        type: 'snapshot',
        at: now.toISOString(),
        drones: drones.map((d) => droneView(d, now, config.STALE_AFTER_S)),
        stations: stations.map(stationView),
        deliveries: unfinished.map(deliveryView),
        alerts: alerts.map(alertOf),
      }
      return Buffer.from(JSON.stringify(snapshot))
    }, FRAME_MS)

    /** The origins a browser may open the stream from, on the port actually listened on. */
    const allowedOrigins = (): Set<string> => {
      const address = fastify.server.address()
      const port = typeof address === 'object' && address !== null ? address.port : config.HTTP_PORT
      return new Set(liveOrigins(config, port))
    }

    fastify.get(
      '/api/live',
      {
        websocket: true,
        schema: { hide: true },
        // Signs in with its first message, not in the URL: see the handler.
        config: { access: 'in-band' },
        // A WebSocket has no CORS: without this, any web page an operator visits could
        // read the fleet through their browser. Browsers send Origin; other clients
        // (scripts, the tests) send none and are let through. The origin is held against
        // the configured ones, never against the request's Host: a page on a
        // DNS-rebinding name has the same name in both (issue 14).
        preValidation: async (req, reply) => {
          const origin = req.headers.origin
          if (origin !== undefined && !allowedOrigins().has(normaliseOrigin(origin))) {
            metrics.liveRefused.inc({ reason: 'origin' })
            throw new ApiError(
              403,
              'forbidden_origin',
              `origin ${origin} may not open the live stream (PUBLIC_ORIGIN)`,
            )
          }
          // An address over its failed sign-ins (limits.ts) waits, like on REST.
          await fastify.authFailures.refuseIfBlocked(req, reply)
          // Refused before the upgrade while full; the handler checks again, exactly.
          const refusal = hub.refusal(req.ip)
          if (refusal !== undefined) {
            metrics.liveRefused.inc({ reason: refusal.reason })
            return reply
              .code(refusal.status)
              .header('retry-after', String(RETRY_AFTER_S))
              .send({ error: { code: `live_${refusal.reason}`, message: refusal.message } })
          }
        },
      },
      async (socket, req) => {
        // Upgrades that passed preValidation together may together go past the caps.
        const refusal = hub.refusal(req.ip)
        if (refusal !== undefined) {
          metrics.liveRefused.inc({ reason: refusal.reason })
          socket.close(1013, `try again later: ${refusal.message}`) // 1013: Try Again Later
          return
        }
        // Who it is comes in its first message, `{"type":"auth","token"}`, within
        // LIVE_AUTH_TIMEOUT_MS (issue 16). Not in the URL: URLs are logged, by the api and
        // by every proxy on the way. Not in Sec-WebSocket-Protocol, the one header a
        // browser lets a page set: it is a header proxies log too, and a server must echo
        // the protocol it picks, so the token would come back in the answer. Not a cookie:
        // a WebSocket has no CORS, a cookie would go with any page's request.
        const refuse = (code: number, reason: string) => {
          clearTimeout(deadline)
          hub.remove(socket)
          socket.close(code, reason)
        }
        const deadline = setTimeout(
          () => refuse(CLOSE_UNAUTHORIZED, 'sign in: send {"type":"auth","token"} first'),
          config.LIVE_AUTH_TIMEOUT_MS,
        )
        socket.once('close', () => clearTimeout(deadline))
        /** What the client sent while its token was checked: its bounds, once it is in. */
        let meanwhile: unknown[] | undefined
        const signIn = async (message: unknown) => {
          if (meanwhile !== undefined) return void meanwhile.push(message) // one attempt
          meanwhile = []
          clearTimeout(deadline)
          const auth = AuthSchema.safeParse(message)
          if (!auth.success)
            return refuse(CLOSE_UNAUTHORIZED, 'sign in: send {"type":"auth","token"} first')
          let reader: Principal
          try {
            reader = await fastify.readerOf(auth.data.token, req)
          } catch (err) {
            const forbidden = err instanceof ApiError && err.statusCode === 403
            return refuse(forbidden ? CLOSE_FORBIDDEN : CLOSE_UNAUTHORIZED, (err as Error).message)
          }
          if (socket.readyState !== socket.OPEN) return
          const { fleets } = reader
          if (reader.exp !== undefined) {
            // Closed at its token's exp, as the broker closes an MQTT connection (issue 16):
            // a stream would otherwise outlive its token for good. An OIDC token is accepted
            // up to the clock skew past its exp, so its stream is closed then.
            closeAtExpiry(
              socket,
              reader.exp * 1000 + (reader.kind === 'oidc' ? oidcGraceMs : 0),
              () => hub.expire(socket),
            )
          }
          hub.admit(socket, fleets)
          for (const m of meanwhile) hub.receive(socket, m)
          try {
            hub.sendSnapshot(socket, await snapshots.get(hub.version, fleets))
          } catch (err) {
            fastify.log.warn({ err }, 'live snapshot failed')
            hub.remove(socket)
            socket.close(1011, 'snapshot failed')
          }
        }
        hub.add(socket, req.ip, req.socket, (message) => void signIn(message))
      },
    )

    const frame = async () => {
      if (hub.size === 0) return
      const changes = hub.drain()
      const n =
        changes.drones.length +
        changes.dronesToRead.length +
        changes.stations.length +
        changes.deliveryIds.length +
        changes.alerts.length +
        changes.alertsToRead.length +
        changes.geofences.length
      if (n === 0) {
        if (hub.quietTooLong) {
          hub.send({
            type: 'changes',
            at: new Date().toISOString(),
            drones: [],
            stations: [],
            deliveries: [],
            alerts: [],
          })
        }
        return
      }
      const [stationRows, deliveryRows, droneRows, alertRows] = await Promise.all([
        changes.stations.length > 0 ? fastify.fleet.listStations('*') : Promise.resolve([]),
        fastify.deliveries.byIds(changes.deliveryIds),
        changes.dronesToRead.length > 0
          ? fastify.fleet.dronesByKeys(changes.dronesToRead)
          : Promise.resolve([]),
        fastify.alerts.service.repository.byIds(changes.alertsToRead),
      ])
      const wanted = new Set(changes.stations)
      const now = new Date()
      hub.send({
        type: 'changes',
        at: now.toISOString(),
        drones: [
          ...changes.drones,
          ...droneRows.map((row) => droneView(row, now, fastify.config.STALE_AFTER_S)),
        ],
        stations: stationRows.filter((s) => wanted.has(`${s.fleetId}/${s.id}`)).map(stationView),
        deliveries: deliveryRows.map(deliveryView),
        alerts: [...changes.alerts, ...alertRows.map(alertOf)],
        ...(changes.geofences.length > 0 && { geofences: changes.geofences }),
      })
    }
    // Each frame is scheduled when the last is out: never two within FRAME_MS, even
    // when the database is slow to answer.
    let timer: NodeJS.Timeout | undefined
    let closed = false
    const loop = () => {
      timer = setTimeout(() => {
        hub.sweep()
        frame()
          .catch((err: unknown) => fastify.log.warn({ err }, 'live frame failed'))
          .finally(() => {
            hub.ping()
            if (!closed) loop()
          })
      }, FRAME_MS)
    }
    loop()
    fastify.addHook('onClose', async () => {
      unsubscribe()
      unsubscribeAlerts()
      unsubscribeZones()
      closed = true
      clearTimeout(timer)
    })
  },
  {
    name: 'live',
    dependencies: ['fleet-repository', 'deliveries', 'geofences', 'metrics', 'limits', 'alerts'],
  },
)
