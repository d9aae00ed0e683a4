import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { Aedes } from 'aedes'
import type { AedesOptions, AuthenticateError, Client, ConnectPacket, PublishPacket } from 'aedes'
import mqemitter from 'mqemitter'
import mqemitterRedis from 'mqemitter-redis'
import aedesPersistenceRedis from 'aedes-persistence-redis'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import type { Logger } from 'pino'
import { mayLeaveWill, mayPublish, maySubscribe } from './acl.ts'
import { BoundedEmitter } from './bounded-mq.ts'
import type { MessageEmitter } from './bounded-mq.ts'
import { BrokerMetrics } from './metrics.ts'
import { PublishLimiter } from './rate-limit.ts'
import type { Clock } from './rate-limit.ts'
import { TokenError, verifyDeviceToken } from './tokens.ts'
import type { DeviceIdentity } from './tokens.ts'
import { limitPacketSize } from './packet-size.ts'
import { indexedMemoryPersistence } from './retained-index.ts'

export interface BrokerOptions {
  /** HS256 secret that device tokens are verified with. */
  tokenSecret: string
  /** Accept clients that send no username and password, with full access to `fleet/#`. Default false. */
  allowAnonymous?: boolean
  /** Largest packet accepted, bytes of remaining length. Default 65,536. */
  maxPacketBytes?: number
  /** Publishes per second per client and the burst above it; null: no limit. Default 100/s, burst 200. */
  rateLimit?: { ratePerS: number; burst: number } | null
  /** How long a client may keep exceeding its rate before it is disconnected, ms. Default 10,000. */
  floodWindowMs?: number
  /** Concurrent connections. Default 20,000. */
  maxConnections?: number
  /** Messages routed at once before QoS 0 is dropped. Default 10,000. */
  maxInFlight?: number
  /** Time given to a subscriber whose socket is full to drain before it is disconnected, ms. Default 30,000. */
  drainTimeoutMs?: number
  /** Redis URL for durable sessions and retained messages, shared by every broker on it. Default: in memory. */
  redisUrl?: string
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
  identityOf(client: Client): DeviceIdentity | undefined
  /** Disconnects every client (their wills fire), then releases persistence. */
  close(): Promise<void>
}

/** What preConnect saw in the CONNECT packet, kept for authenticate. */
interface ConnectInfo {
  emptyPersistentId: boolean
  clientId: string
  willTopic: string | undefined
}

/** authenticate refusals with the CONNACK return code they map to. */
const REFUSALS = {
  identifier_rejected: 2,
  server_unavailable: 3,
  not_authorized: 5,
} as const

/**
 * aedes with Skyline's policy: publishes that the ACL or the rate limit refuses are
 * acknowledged and dropped (MQTT-3.3.5-2 allows either that or closing the
 * connection; dropping keeps a misconfigured device connected and counted).
 * aedes's own authorizePublish can only close the connection, so a refused packet is
 * marked there and never reaches routing or the retained store here.
 */
class SkylineAedes extends Aedes {
  readonly droppedPackets = new WeakSet<PublishPacket>()

  override publish(packet: PublishPacket, clientOrDone?: unknown, done?: unknown): void {
    if (this.droppedPackets.has(packet)) {
      const callback = typeof clientOrDone === 'function' ? clientOrDone : done
      if (typeof callback === 'function') setImmediate(callback as () => void)
      return
    }
    // aedes's typings know publish(packet, done) only; at run time it takes the client too.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    Reflect.apply(Aedes.prototype.publish, this, [packet, clientOrDone, done])
  }
}

export async function createBroker(options: BrokerOptions): Promise<SkylineBroker> {
  const log = options.logger ?? pino({ level: 'silent' })
  const metrics = options.metrics ?? new BrokerMetrics()
  const maxPacketBytes = options.maxPacketBytes ?? 65_536
  const rateLimit =
    options.rateLimit === undefined ? { ratePerS: 100, burst: 200 } : options.rateLimit
  const maxConnections = options.maxConnections ?? 20_000
  const identities = new WeakMap<Client, DeviceIdentity>()
  const connectInfo = new WeakMap<Client, ConnectInfo>()
  const limiters = new WeakMap<Client, PublishLimiter>()

  // concurrency 0: BoundedEmitter does the bounding, see there.
  const inner: MessageEmitter = options.redisUrl
    ? mqemitterRedis({ connectionString: options.redisUrl, concurrency: 0 })
    : mqemitter({ concurrency: 0, matchEmptyLevels: true }) // [MQTT-4.7.1-3]
  const mq = new BoundedEmitter(inner, options.maxInFlight ?? 10_000, () =>
    metrics.drop('overload'),
  )
  const persistence = options.redisUrl
    ? aedesPersistenceRedis({ conn: new Redis(options.redisUrl) })
    : indexedMemoryPersistence()

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
    concurrency: 0,
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
      // [MQTT-3.1.3-8] a zero-byte client id with CleanSession 0 gets return code 0x02.
      if (info?.emptyPersistentId) return refuse(done, 'identifier_rejected', 'empty_client_id')
      if (rootBroker.connectedClients >= maxConnections) {
        return refuse(done, 'server_unavailable', 'too_many_connections')
      }
      if (username === undefined && password === undefined) {
        if (!options.allowAnonymous) return refuse(done, 'not_authorized', 'no_token')
        identities.set(client, { role: 'anonymous', id: client.id })
        return done(null, true)
      }
      if (password === undefined) return refuse(done, 'not_authorized', 'no_token')
      verifyDeviceToken(options.tokenSecret, password.toString('utf8')).then(
        (who) => {
          if (who.id !== username) return refuse(done, 'not_authorized', 'username_mismatch')
          if (!ownsClientId(who, info?.clientId ?? '')) {
            return refuse(done, 'identifier_rejected', 'client_id_not_owned')
          }
          if (info?.willTopic !== undefined && !mayLeaveWill(who, info.willTopic)) {
            metrics.refused.inc({ action: 'will' })
            return refuse(done, 'not_authorized', 'will_not_authorized')
          }
          identities.set(client, who)
          if (rateLimit && who.role !== 'service') {
            limiters.set(
              client,
              new PublishLimiter(
                rateLimit.ratePerS,
                rateLimit.burst,
                options.floodWindowMs,
                options.clock,
              ),
            )
          }
          done(null, true)
        },
        (err: unknown) =>
          refuse(done, 'not_authorized', err instanceof TokenError ? err.code : 'token_invalid'),
      )
    },

    authorizePublish(client, packet, done) {
      // A will: its topic was authorized at CONNECT (or, with client null, on the
      // broker that accepted that CONNECT before it died).
      if (client === null || packet === (client as Client & { will?: unknown }).will) {
        return done(null)
      }
      metrics.messagesIn.inc({ qos: packet.qos })
      const who = identities.get(client)
      if (who === undefined || !mayPublish(who, packet.topic)) {
        metrics.refused.inc({ action: 'publish' })
        metrics.drop('not_authorized')
        broker.droppedPackets.add(packet)
        return done(null)
      }
      const verdict = limiters.get(client)?.check() ?? 'ok'
      if (verdict === 'ok') return done(null)
      metrics.drop('rate_limited')
      broker.droppedPackets.add(packet)
      if (verdict === 'drop') return done(null)
      metrics.disconnects.inc({ reason: 'flood' })
      log.warn(
        { clientId: client.id },
        'client keeps publishing over its rate limit: disconnecting',
      )
      done(new Error('publish rate limit exceeded for too long'))
    },

    authorizeSubscribe(client, sub, done) {
      const who = identities.get(client)
      if (who !== undefined && maySubscribe(who, sub.topic)) return done(null, sub)
      metrics.refused.inc({ action: 'subscribe' })
      done(null, null) // SUBACK 0x80 for this filter, the rest of the SUBSCRIBE goes on
    },

    authorizeForward(client, packet) {
      // A QoS 0 delivery to a subscriber that is not reading is dropped rather than
      // buffered: at most once allows it, and it keeps one slow reader from holding
      // memory or stalling every publisher behind it.
      if (packet.qos === 0 && client.conn.writableNeedDrain) {
        metrics.drop('slow_subscriber')
        return null
      }
      metrics.messagesOut.inc({ qos: packet.qos })
      return packet
    },
  }

  const broker = new SkylineAedes(hooks)
  const rootBroker = broker as Aedes & { connectedClients: number }
  await broker.listen()

  broker.on('client', () => metrics.connections.set(rootBroker.connectedClients))
  broker.on('clientDisconnect', () => metrics.connections.set(rootBroker.connectedClients))
  broker.on('clientError', (client, err) =>
    log.debug({ clientId: client.id, err: err.message }, 'client error'),
  )
  broker.on('connectionError', (_client, err) =>
    log.debug({ err: err.message }, 'connection error'),
  )

  let closed: Promise<void> | undefined
  return {
    aedes: broker,
    metrics,
    handle(conn, req) {
      const client = broker.handle(conn, req)
      limitPacketSize(client, maxPacketBytes, () =>
        metrics.disconnects.inc({ reason: 'packet_too_large' }),
      )
    },
    identityOf: (client) => identities.get(client),
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
 * A device may connect only under its own id, as `id` or `id:<anything>` (or with an
 * empty id for a clean session, which the broker replaces with a unique one), so it
 * cannot take over another device's connection or persistent session
 * ([MQTT-3.1.4-2] would otherwise let it). The trusted service role is exempt.
 */
function ownsClientId(who: DeviceIdentity, clientId: string): boolean {
  if (who.role === 'service' || who.role === 'anonymous' || clientId === '') return true
  return clientId === who.id || clientId.startsWith(who.id + ':')
}
