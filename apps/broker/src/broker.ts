import type { EventEmitter } from 'node:events'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { Aedes } from 'aedes'
import type { AedesOptions, AuthenticateError, Client, ConnectPacket, PublishPacket } from 'aedes'
import mqemitter from 'mqemitter'
import { pino } from 'pino'
import type { Logger } from 'pino'
import { mayLeaveWill, mayRetain, maySubscribe, publishAuthorizer } from './acl.ts'
import { BoundedEmitter } from './bounded-mq.ts'
import type { MessageEmitter } from './bounded-mq.ts'
import { IdentityConnections, identityKey } from './identities.ts'
import { BrokerMetrics } from './metrics.ts'
import { protocolChecks } from './protocol-checks.ts'
import { PublishLimiter } from './rate-limit.ts'
import type { Clock } from './rate-limit.ts'
import { DEFAULT_CLOCK_TOLERANCE_S, TokenError, createAuthenticator } from '@skyline/auth'
import type { OidcOptions } from '@skyline/auth'
import { identityFor } from './client-identity.ts'
import type { ClientIdentity } from './client-identity.ts'
import { packetSizeLimit } from './packet-size.ts'
import { lightParserBuffer } from './parser-buffer.ts'
import { batchWrites } from './write-batching.ts'
import { indexedMemoryPersistence } from './retained-index.ts'
import { redisCluster } from './redis-cluster.ts'
import { guardSubscriptionWrites } from './subscription-store.ts'
import { drainClients } from './drain.ts'
import { AckOrder } from './ack-order.ts'
import { connackFirst } from './connack-first.ts'
import { dedupeWindow } from './dedupe-window.ts'

export interface BrokerOptions {
  /** HS256 secret that device tokens are verified with. */
  tokenSecret: string
  /** An OIDC issuer whose access tokens are accepted beside device tokens. Default none. */
  oidc?: OidcOptions
  /** Accept clients that send no username and password, with full access to `fleet/#`. Default false. */
  allowAnonymous?: boolean
  /** Largest packet accepted, bytes of remaining length. Default 65,536. */
  maxPacketBytes?: number
  /**
   * Publishes per second per identity (role, fleet and id of a token; all its
   * connections together, refused publishes included) and the burst above it; the
   * service role is exempt. null: no limit. Default 100/s, burst 200.
   */
  rateLimit?: { ratePerS: number; burst: number } | null
  /** How long an identity may keep exceeding its rate before it is disconnected, ms. Default 10,000. */
  floodWindowMs?: number
  /** Concurrent connections. Default 20,000. */
  maxConnections?: number
  /**
   * Connections one identity may hold at once: `device` for drones and stations,
   * `user` for viewers, services and anonymous clients. A further connection closes
   * the identity's oldest. Default 1 and 10.
   */
  connectionsPerIdentity?: { device: number; user: number }
  /** Messages routed at once before QoS 0 is dropped. Default 10,000. */
  maxInFlight?: number
  /** Bytes waiting to be written to a subscriber before QoS 1/2 deliveries disconnect it. Default 4 MiB. */
  maxQueuedBytes?: number
  /** Time given to a subscriber whose socket is full to drain before it is disconnected, ms. Default 30,000. */
  drainTimeoutMs?: number
  /** Redis URL for durable sessions and retained messages, shared by every broker on it. Default: in memory. */
  redisUrl?: string
  /** Name of the brokers sharing Redis; prefixes every key and channel. Default 'skyline'. */
  cluster?: string
  /** Unique broker id; brokers sharing Redis must differ. Default random. */
  id?: string
  metrics?: BrokerMetrics
  logger?: Logger
  clock?: Clock
}

export interface SkylineBroker {
  readonly aedes: Aedes
  readonly metrics: BrokerMetrics
  /** Serves one connection (TCP, TLS or a WebSocket stream). */
  handle(conn: Duplex, req?: IncomingMessage): void
  /** Who a connected client is; undefined before it authenticated. */
  identityOf(client: Client): ClientIdentity | undefined
  /** True from the moment drain() is called: `/health` answers 503 so load balancers look elsewhere. */
  readonly draining: boolean
  /**
   * Closes every client over `windowMs` without its will (drain.ts), so they move to
   * another broker of the cluster; resolves with how many it closed. Call close() after.
   */
  drain(windowMs: number): Promise<number>
  /** Disconnects every client (their wills fire), then releases persistence. */
  close(): Promise<void>
}

/** What preConnect saw in the CONNECT packet, kept for authenticate. */
interface ConnectInfo {
  emptyPersistentId: boolean
  clientId: string
  willTopic: string | undefined
}

/** Who an authenticated client is and what its publishes are checked against. */
interface Admitted {
  who: ClientIdentity
  /** When its token stops being accepted, epoch ms; undefined: never. */
  expiresAt: number | undefined
  mayPublish: (topic: string) => boolean
  /** Its identity's publish budget, shared by all the identity's connections; set once registered. */
  limiter: PublishLimiter | undefined
}

/** authenticate refusals with the CONNACK return code they map to. */
const REFUSALS = {
  identifier_rejected: 2,
  server_unavailable: 3,
  not_authorized: 5,
} as const

/** A client's QoS 1 publish that SkylineAedes routes itself (see below). */
interface Routing {
  /** Routing is over (every subscriber written to), with its error if any. */
  over: boolean
  err: Error | null | undefined
  /** aedes's own publish of the packet, waiting for the routing to be over. */
  then: ((err?: Error | null) => void) | undefined
}

type Emit = (packet: { brokerId?: string; brokerCounter?: number }, done?: unknown) => unknown

/**
 * aedes with Skyline's policy:
 *
 * - Publishes that the ACL or the rate limit refuses are acknowledged and dropped
 *   (MQTT-3.3.5-2 allows either that or closing the connection; dropping keeps a
 *   misconfigured device connected and counted). aedes's own authorizePublish can only
 *   close the connection, so a refused packet is marked there and never reaches routing
 *   or the retained store here.
 * - A client's QoS 1 publish is acknowledged once it is queued for every persistent
 *   session it matches, not before. aedes 1.2 writes the PUBACK first and routes after:
 *   a broker killed in between had acknowledged messages that no queue held, and the
 *   device had let them go (issue 17: about ten at once in every run of `npm run chaos
 *   -- cluster` that killed a broker). authorizePublish starts the routing itself
 *   (`routeBeforeAck`) and lets aedes go on to its PUBACK when aedes hands the packet
 *   to the emitter, which it does once its queueing step is done; aedes's own publish of
 *   the packet then waits for that routing to be over, so a publisher still waits for
 *   its messages' routing before its next packets are read, as before.
 */
class SkylineAedes extends Aedes {
  readonly droppedPackets = new WeakSet<PublishPacket>()
  private readonly routing = new WeakMap<PublishPacket, Routing>()
  /** Packets being routed by routeBeforeAck, by broker counter: told once queued. */
  private readonly queuing = new Map<number, () => void>()

  constructor(options: AedesOptions) {
    super(options)
    const self = this as unknown as { mq: { emit: Emit }; id: string }
    const emit = self.mq.emit.bind(self.mq)
    self.mq.emit = (packet, done) => {
      if (packet.brokerId === self.id && packet.brokerCounter !== undefined) {
        const queued = this.queuing.get(packet.brokerCounter)
        this.queuing.delete(packet.brokerCounter)
        queued?.()
      }
      return emit(packet, done)
    }
  }

  override publish(packet: PublishPacket, clientOrDone?: unknown, done?: unknown): void {
    const callback = (typeof clientOrDone === 'function' ? clientOrDone : done) as
      ((err?: Error | null) => void) | undefined
    if (this.droppedPackets.has(packet)) {
      if (callback) setImmediate(callback)
      return
    }
    const routing = this.routing.get(packet)
    if (routing !== undefined) {
      this.routing.delete(packet)
      if (routing.over) setImmediate(() => callback?.(routing.err))
      else routing.then = callback
      return
    }
    // aedes's typings know publish(packet, done) only; at run time it takes the client too.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    Reflect.apply(Aedes.prototype.publish, this, [packet, clientOrDone, done])
  }

  /**
   * Routes a client's QoS 1 publish and tells `queued` once it is queued for every
   * persistent session (or routing failed before): then aedes may acknowledge it.
   */
  routeBeforeAck(
    packet: PublishPacket,
    client: Client,
    queued: (err?: Error | null) => void,
  ): void {
    const self = this as unknown as { counter: number; id: string }
    // The identity aedes would give it (aedes-packet keeps one it is given), known here.
    const counter = ++self.counter
    Object.assign(packet, { brokerId: self.id, brokerCounter: counter })
    let told = false
    const tell = (err?: Error | null) => {
      if (told) return
      told = true
      queued(err)
    }
    this.queuing.set(counter, () => tell(null))
    const routing: Routing = { over: false, err: undefined, then: undefined }
    this.routing.set(packet, routing)
    // eslint-disable-next-line @typescript-eslint/unbound-method
    Reflect.apply(Aedes.prototype.publish, this, [
      packet,
      client,
      (err?: Error | null) => {
        this.queuing.delete(counter)
        routing.over = true
        routing.err = err
        tell(err)
        routing.then?.(err)
      },
    ])
  }
}

export async function createBroker(options: BrokerOptions): Promise<SkylineBroker> {
  const log = options.logger ?? pino({ level: 'silent' })
  const metrics = options.metrics ?? new BrokerMetrics()
  const maxPacketBytes = options.maxPacketBytes ?? 65_536
  const rateLimit =
    options.rateLimit === undefined ? { ratePerS: 100, burst: 200 } : options.rateLimit
  const maxConnections = options.maxConnections ?? 20_000
  const maxQueuedBytes = options.maxQueuedBytes ?? 4 * 1024 * 1024
  const perIdentity = options.connectionsPerIdentity ?? { device: 1, user: 10 }
  // One record per admitted client (each WeakMap entry costs an idle connection memory).
  const admitted = new WeakMap<Client, Admitted>()
  const connectInfo = new WeakMap<Client, ConnectInfo>()
  const ackOrder = new AckOrder()
  let authenticating = 0
  const authenticator = createAuthenticator({ secret: options.tokenSecret, oidc: options.oidc })
  // An OIDC token is accepted up to this long past its exp (clock skew with the issuer),
  // so its connection is closed then, not at an exp it was accepted after.
  const oidcGraceMs = (options.oidc?.clockToleranceS ?? DEFAULT_CLOCK_TOLERANCE_S) * 1000
  const identities = new IdentityConnections(
    (who) =>
      who.role === 'drone' || who.role === 'station' ? perIdentity.device : perIdentity.user,
    (who) =>
      rateLimit && who.role !== 'service' && who.role !== 'admin'
        ? new PublishLimiter(
            rateLimit.ratePerS,
            rateLimit.burst,
            options.floodWindowMs,
            options.clock,
          )
        : undefined,
  )
  metrics.countIdentities(() => identities.size)

  /**
   * Records who the client is and puts its session in that identity's namespace:
   * the session key becomes role, fleet and id plus the client id it asked for. Two
   * devices that pick the same client id (the same drone id in two fleets, a viewer
   * named like a drone) then never close each other's connection nor share a
   * persistent session ([MQTT-3.1.4-2] takeover stays within one identity).
   */
  function admit(client: Client, who: ClientIdentity, expiresAt?: number): void {
    ;(client as { id: string }).id = `${identityKey(who)}|${client.id}`
    admitted.set(client, { who, expiresAt, mayPublish: publishAuthorizer(who), limiter: undefined })
  }

  /**
   * Closes the client when its token expires: MQTT 3.1.1 has no re-authentication, so a
   * connection would otherwise outlive its token for good. Armed once the client is
   * registered, disarmed when its connection closes. setTimeout holds at most 2^31-1 ms
   * (24.8 days): a later expiry re-arms on the way.
   */
  function closeAtExpiry(client: Client, expiresAt: number): void {
    const arm = () => {
      const timer = setTimeout(
        () => {
          if (client.closed) return
          if (Date.now() < expiresAt) return arm()
          metrics.disconnects.inc({ reason: 'token_expired' })
          log.info({ clientId: client.id }, 'token expired: closing the connection')
          client.close()
        },
        Math.min(Math.max(0, expiresAt - Date.now()), 2 ** 31 - 1),
      )
      timer.unref()
      client.conn.once('close', () => clearTimeout(timer))
    }
    arm()
  }

  /**
   * A client is registered (nothing it published has been handled yet): it takes its
   * identity's shared budget, and the identity's connections past the bound make way,
   * as MQTT does for a client id [MQTT-3.1.4-2]. A device that reconnects is never
   * locked out by its own stale connection, and one token cannot take the broker's
   * connections.
   */
  function joinIdentity(client: Client): void {
    const entry = admitted.get(client)
    if (entry === undefined) return
    const { limiter, displaced } = identities.join(client, entry.who)
    entry.limiter = limiter
    if (entry.expiresAt !== undefined) closeAtExpiry(client, entry.expiresAt)
    for (const old of displaced) {
      metrics.disconnects.inc({ reason: 'identity_takeover' })
      log.info({ clientId: old.id }, 'a newer connection of the same identity takes over')
      old.close()
    }
  }

  // concurrency 0: BoundedEmitter does the bounding, see there.
  const redisError = (err: Error) => log.error({ err: err.message }, 'Redis error (REDIS_URL)')
  const redis = options.redisUrl
    ? redisCluster(options.redisUrl, options.cluster ?? 'skyline', redisError)
    : undefined
  const inner: MessageEmitter =
    redis?.emitter ?? mqemitter({ concurrency: 0, matchEmptyLevels: true }) // [MQTT-4.7.1-3]
  const mq = new BoundedEmitter(inner, options.maxInFlight ?? 10_000, () =>
    metrics.drop('overload'),
  )
  // A persistent session stores only the filters it was granted (see subscription-store.ts).
  const persistence = guardSubscriptionWrites(
    redis?.persistence ?? (indexedMemoryPersistence() as object),
    (client, topic) => {
      const who = admitted.get(client)?.who
      return who !== undefined && maySubscribe(who, topic)
    },
  )

  function refuse(
    done: (error: AuthenticateError | null, success: boolean | null) => void,
    why: keyof typeof REFUSALS,
    detail: string,
  ): void {
    metrics.authFailures.inc({ reason: detail })
    const err = Object.assign(new Error(`${why}: ${detail}`), { returnCode: REFUSALS[why] })
    done(err, false)
  }

  const hooks: AedesOptions = {
    id: options.id,
    mq,
    persistence,
    drainTimeout: options.drainTimeoutMs ?? 30_000,

    preConnect(client, packet: ConnectPacket, done) {
      connectInfo.set(client, {
        emptyPersistentId: packet.clientId === '' && !packet.clean,
        clientId: packet.clientId,
        willTopic: packet.will?.topic,
      })
      done(null, true)
    },

    authenticate(client, username, password, done) {
      const info = connectInfo.get(client)
      connectInfo.delete(client) // needed only here: not kept for the connection's life
      // [MQTT-3.1.3-8] a zero-byte client id with CleanSession 0 gets return code 0x02.
      if (info?.emptyPersistentId) return refuse(done, 'identifier_rejected', 'empty_client_id')
      // Those being authenticated count too, or a fleet reconnecting at once gets past.
      if (rootBroker.connectedClients + authenticating >= maxConnections) {
        return refuse(done, 'server_unavailable', 'too_many_connections')
      }
      if (username === undefined && password === undefined) {
        if (!options.allowAnonymous) return refuse(done, 'not_authorized', 'no_token')
        const who: ClientIdentity = { role: 'anonymous', id: client.id }
        if (info?.willTopic !== undefined && !mayLeaveWill(who, info.willTopic)) {
          metrics.refused.inc({ action: 'will' })
          return refuse(done, 'not_authorized', 'will_not_authorized')
        }
        admit(client, who)
        return done(null, true)
      }
      if (password === undefined) return refuse(done, 'not_authorized', 'no_token')
      authenticating++
      // The token itself is never logged: refusals count and log its error code only.
      authenticator
        .verify(password.toString('utf8'))
        .finally(() => authenticating--)
        .then(
          (principal) => {
            if (principal.sub !== username) {
              return refuse(done, 'not_authorized', 'username_mismatch')
            }
            const who = identityFor(principal)
            if (who === undefined) return refuse(done, 'not_authorized', 'token_claims')
            if (info?.willTopic !== undefined && !mayLeaveWill(who, info.willTopic)) {
              metrics.refused.inc({ action: 'will' })
              return refuse(done, 'not_authorized', 'will_not_authorized')
            }
            const expiresAt =
              principal.exp === undefined
                ? undefined
                : principal.exp * 1000 + (principal.kind === 'oidc' ? oidcGraceMs : 0)
            admit(client, who, expiresAt)
            done(null, true)
          },
          (err: unknown) => {
            const code = err instanceof TokenError ? err.code : 'token_invalid'
            // The issuer out of reach is ours to fix, not the client's token: 'server
            // unavailable' tells a device to retry rather than to fetch a new token.
            if (code === 'issuer_unavailable') {
              log.warn({ err: (err as Error).message }, 'OIDC issuer unavailable')
              return refuse(done, 'server_unavailable', code)
            }
            refuse(done, 'not_authorized', code)
          },
        )
    },

    authorizePublish(client, packet, done) {
      // A will: its topic was authorized at CONNECT (or, with client null, on the
      // broker that accepted that CONNECT before it died).
      if (client === null || packet === (client as Client & { will?: unknown }).will) {
        return done(null)
      }
      metrics.countIn(packet.qos)
      // QoS 1: acknowledged in the order received, whatever completes first.
      const acked = packet.qos === 1 ? ackOrder.hold(client, done) : done
      const entry = admitted.get(client)
      // Every publish spends the budget, refused ones too (issue 14: refused publishes
      // skipped it, 50,000/s from one client and never a disconnect), before the ACL
      // spends any work on it.
      const verdict = entry?.limiter?.check() ?? 'ok'
      if (verdict !== 'ok') {
        metrics.drop('rate_limited')
        broker.droppedPackets.add(packet)
        if (verdict === 'drop') return acked(null)
        metrics.disconnects.inc({ reason: 'flood' })
        log.warn(
          { clientId: client.id },
          'client keeps publishing over its rate limit: disconnecting',
        )
        return acked(new Error('publish rate limit exceeded for too long'))
      }
      if (
        entry === undefined ||
        !entry.mayPublish(packet.topic) ||
        (packet.retain && !mayRetain(packet.topic))
      ) {
        metrics.refused.inc({ action: 'publish' })
        metrics.drop('not_authorized')
        broker.droppedPackets.add(packet)
      } else if (packet.qos === 1) {
        return broker.routeBeforeAck(packet, client, acked)
      }
      acked(null)
    },

    authorizeSubscribe(client, sub, done) {
      const who = admitted.get(client)?.who
      if (who !== undefined && maySubscribe(who, sub.topic)) return done(null, sub)
      metrics.refused.inc({ action: 'subscribe' })
      done(null, null) // SUBACK 0x80 for this filter, the rest of the SUBSCRIBE goes on
    },

    authorizeForward(client, packet) {
      // QoS 1/2 to a subscriber that stopped reading: past a bound, disconnect it
      // rather than buffer without limit. A persistent session keeps the messages
      // queued for when it comes back. (QoS 0 deliveries are dropped earlier, in handle.)
      if (packet.qos > 0 && client.conn.writableLength > maxQueuedBytes) {
        if (!client.conn.destroyed) {
          metrics.disconnects.inc({ reason: 'slow_subscriber' })
          client.conn.destroy(
            new Error(`subscriber not reading: over ${maxQueuedBytes} bytes queued`),
          )
        }
        return null
      }
      metrics.countOut(packet.qos)
      return packet
    },
  }

  const broker = new SkylineAedes(hooks)
  const rootBroker = broker as Aedes & { connectedClients: number }
  await broker.listen()

  // Persistence or Redis trouble must not end the process: log it; aedes retries.
  ;(broker as EventEmitter).on('error', (err: Error) =>
    log.error({ err: err.message }, 'broker error'),
  )
  broker.on('client', (client) => {
    metrics.connections.set(rootBroker.connectedClients)
    joinIdentity(client)
  })
  broker.on('clientDisconnect', (client) => {
    metrics.connections.set(rootBroker.connectedClients)
    const who = admitted.get(client)?.who
    if (who !== undefined) identities.leave(client, who)
  })
  broker.on('clientError', (client, err) =>
    log.debug({ clientId: client.id, err: err.message }, 'client error'),
  )
  broker.on('connectionError', (_client, err) =>
    log.debug({ err: err.message }, 'connection error'),
  )

  // Made once, not per connection: every closure a connection holds costs it memory.
  const limitPacketSize = packetSizeLimit(maxPacketBytes, () =>
    metrics.disconnects.inc({ reason: 'packet_too_large' }),
  )
  const onSlowSubscriberDrop = () => metrics.drop('slow_subscriber')
  const checkProtocol = protocolChecks((violation) =>
    metrics.disconnects.inc({ reason: violation }),
  )

  let closed: Promise<void> | undefined
  let draining: Promise<number> | undefined
  return {
    aedes: broker,
    metrics,
    get draining() {
      return draining !== undefined
    },
    drain(windowMs) {
      draining ??= drainClients(broker, {
        windowMs,
        onClosed: () => metrics.disconnects.inc({ reason: 'drain' }),
        onError: (err, client) =>
          log.warn(
            { clientId: client.id, err: err.message },
            'could not delete the will of a drained client: another broker may publish it',
          ),
      })
      return draining
    },
    handle(conn, req) {
      batchWrites(conn)
      const client = broker.handle(conn, req)
      limitPacketSize(client)
      checkProtocol(client)
      lightParserBuffer(client)
      dropQos0WhenBackedUp(client, onSlowSubscriberDrop)
      dedupeWindow(client)
      connackFirst(client)
    },
    identityOf: (client) => admitted.get(client)?.who,
    close() {
      closed ??= (async () => {
        await new Promise<void>((resolve) => broker.close(resolve))
        if (options.redisUrl) await (persistence as { destroy(): Promise<void> }).destroy()
      })()
      return closed
    },
  }
}

/**
 * A QoS 0 delivery (whatever QoS it was published at) to a subscriber whose socket is
 * not draining is dropped rather than buffered: at most once allows it, and one slow
 * reader then holds neither memory nor the publishers behind it. aedes picks
 * `deliver0` when a subscription is made, so it is wrapped before any can be.
 */
function dropQos0WhenBackedUp(client: Client, onDrop: () => void): void {
  const c = client as Client & { deliver0: (packet: unknown, done: () => void) => void }
  const deliver0 = c.deliver0
  c.deliver0 = (packet, done) => {
    if (client.conn.writableNeedDrain) {
      onDrop()
      setImmediate(done)
      return
    }
    deliver0(packet, done)
  }
}
