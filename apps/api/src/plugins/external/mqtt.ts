import fp from 'fastify-plugin'
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import type { FastifyBaseLogger } from 'fastify'
import { generate } from 'mqtt-packet'
import { API_SUBSCRIPTIONS } from '@skyline/schemas'
import type { Alert, DroneCommand } from '@skyline/schemas'
import { keepRenewed } from '@skyline/auth'
import { mqttCredentials } from '../../auth/mqtt-credentials.ts'
import { AckWriter } from '../../ingest/acks.ts'

/** QoS 1 messages received and not yet acknowledged, at most; then mqtt.js waits. */
const MAX_UNACKED = 50_000
/** Tells mqtt.js to send no PUBACK: it is sent once the consumer is done with the message. */
const DEFERRED_ACK = new Error('PUBACK deferred until the consumer is done')
/** How long a command may wait for its PUBCOMP, ms. */
const COMMAND_TIMEOUT_MS = 5_000

/**
 * Takes one message. A promise (for QoS 1 and 2) means "acknowledge once it resolves";
 * undefined, "acknowledge now".
 */
export type Consumer = (topic: string, payload: Buffer, qos: 0 | 1 | 2) => Promise<void> | undefined

declare module 'fastify' {
  interface FastifyInstance {
    mqtt: MqttConnection
  }
}

export interface MqttConnection {
  /** The ingest session's client, while it listens (tests look at its packets). */
  readonly client: MqttClient
  /** The command connection, which every instance keeps, is up. */
  readonly connected: boolean
  /** The broker holds the api's subscriptions: granted in a SUBACK, or kept in its session. */
  readonly subscribed: boolean
  /** Since when the api has been subscribed without a break; undefined while it is not. */
  readonly listeningSince: Date | undefined
  /** Publishes a command to a drone at QoS 2: resolves on PUBCOMP, rejects after 5 s. */
  sendCommand(topic: string, command: DroneCommand): Promise<void>
  /** Publishes an alert on its fleet's topic at QoS 1: resolves on PUBACK, rejects after 5 s. */
  publishAlert(topic: string, alert: Alert): Promise<void>
  /** Who takes the messages; set once, before the app is ready. */
  consume(consumer: Consumer): void
  /** Opens the ingest's persistent session (the leading instance does). */
  listen(): void
  /**
   * Leaves the ingest session, which stays at the broker: a clean DISCONNECT, or the
   * connection dropped after 2 s (at once with `drop`: nothing more is acknowledged,
   * the broker redelivers it to whoever takes the session next).
   */
  stopListening(o?: { drop?: boolean }): Promise<void>
  /** Leaves for good: the ingest session and the command connection. */
  end(): Promise<void>
}

/**
 * The api's MQTT connections, with a service token (renewed before it expires when it
 * comes from the OIDC issuer). The ingest's persistent session (fixed client id
 * API_MQTT_CLIENT_ID, clean session 0, the wildcard subscriptions of
 * docs/architecture.md) is opened by the instance that leads (cluster/lease.ts), and
 * only then; every instance also keeps a command connection of its own (clean session,
 * client id API_MQTT_CLIENT_ID-{instance}) for the commands its REST calls send. QoS 1
 * messages are acknowledged only once the consumer is done with them (the ingest: after
 * the commit), so a crash, a restart, a takeover or a database outage loses nothing: the
 * broker redelivers what was not acknowledged.
 */
export default fp(
  async (fastify) => {
    const { config, tokenSecret, instanceId } = fastify
    const credentials = await mqttCredentials(config, tokenSecret)
    // The token held now: a connection opened later (the ingest session, when this
    // instance comes to lead) starts with the renewed one, not the first, long expired.
    let password = credentials.token.accessToken
    const connect = (clientId: string, clean: boolean) =>
      mqtt.connect(config.MQTT_URL, {
        clientId,
        username: credentials.username,
        password,
        clean,
        reconnectPeriod: 1_000,
        manualConnect: true,
      })
    const commands = connect(`${config.API_MQTT_CLIENT_ID}-${instanceId}`, true)
    commands.on('error', (err) => fastify.log.warn({ err: err.message }, 'MQTT commands: error'))
    let consumer: Consumer | undefined
    let session: IngestSession | undefined
    let stopping: Promise<void> | undefined

    // MQTT 3.1.1 cannot re-authenticate a connection, and the broker closes it when its
    // token expires. Before then each connection moves to the renewed token:
    // DISCONNECT, which ends it cleanly, then mqtt.js's own reconnect (its stores kept);
    // the ingest session's broker side queued what arrived meanwhile, and what was
    // received and not yet acknowledged is redelivered (the ingest stores it once).
    const renewal =
      credentials.renew &&
      keepRenewed(
        credentials.token,
        credentials.renew,
        (next) => {
          password = next.accessToken
          for (const client of [commands, session?.client]) {
            if (client === undefined) continue
            client.options.password = next.accessToken
            if (!client.connected) continue
            if (client === session?.client) session.handingOver = true
            client.stream.write(generate({ cmd: 'disconnect' }))
          }
          fastify.log.info('MQTT: moved to the renewed token')
        },
        (err) => fastify.log.error({ err: err.message }, 'MQTT token renewal failed: trying again'),
      )

    const stopListening = async (o: { drop?: boolean } = {}) => {
      const s = session
      session = undefined
      if (s === undefined) return
      await s.end(o.drop === true)
    }
    let ended: Promise<void> | undefined
    const end = () =>
      (ended ??= (async () => {
        renewal?.stop()
        await stopListening()
        await endClient(commands)
      })())
    fastify.decorate('mqtt', {
      get client() {
        if (session === undefined) throw new Error('the ingest session is not open')
        return session.client
      },
      get connected() {
        return commands.connected
      },
      get subscribed() {
        return session?.listeningSince !== undefined
      },
      get listeningSince() {
        return session?.listeningSince
      },
      sendCommand: (topic, command) =>
        publishAcked(commands, topic, command, 2, COMMAND_TIMEOUT_MS),
      publishAlert: (topic, alert) => publishAcked(commands, topic, alert, 1, COMMAND_TIMEOUT_MS),
      consume(c) {
        if (consumer !== undefined) throw new Error('the MQTT connection has a consumer already')
        consumer = c
      },
      listen() {
        if (session !== undefined || ended !== undefined) return
        if (consumer === undefined) throw new Error('the MQTT connection has no consumer')
        session = new IngestSession(
          connect(config.API_MQTT_CLIENT_ID, false),
          consumer,
          fastify.log,
        )
      },
      stopListening: (o) => (stopping = stopListening(o).finally(() => (stopping = undefined))),
      end,
    } satisfies MqttConnection)
    fastify.addHook('onReady', () => {
      commands.connect()
    })
    fastify.addHook('onClose', async () => {
      await stopping
      await end()
    })
  },
  { name: 'mqtt', dependencies: ['leadership'] },
)

/**
 * The ingest's persistent session: its messages go to the consumer, and each QoS 1
 * message is acknowledged once the consumer is done with it.
 */
class IngestSession {
  listeningSince: Date | undefined
  /** A move to a renewed token is under way: the next close is no break in listening. */
  handingOver = false
  private subackTimer: NodeJS.Timeout | undefined
  private unacked = 0

  constructor(
    readonly client: MqttClient,
    consumer: Consumer,
    log: FastifyBaseLogger,
  ) {
    // QoS 1 acknowledged after commit, yet batched. mqtt.js handles one incoming packet
    // at a time and sends the PUBACK from handleMessage's callback, so waiting there
    // for the commit would make every QoS 1 message its own transaction. Instead the
    // callback is called at once with an error, which mqtt.js takes as "send no
    // PUBACK" while it moves on to the next packet; the PUBACK is written after the
    // batch commits, in arrival order (MQTT-4.6.0-2), and only on the connection the
    // message came in on: after a reconnect the broker redelivers it anyway. Past
    // MAX_UNACKED waiting messages (a database outage) the old backpressure returns.
    const acks = new AckWriter((stream) => client.stream === stream && client.connected)
    client.handleMessage = (packet, done) => {
      const handled = consumer(packet.topic, packet.payload as Buffer, packet.qos)
      if (handled === undefined || packet.messageId === undefined) return done()
      if (this.unacked >= MAX_UNACKED) {
        // mqtt.js sends this PUBACK itself: the ones held before it go first.
        void handled.then(() => {
          acks.flush()
          done()
        })
        return
      }
      this.unacked++
      const stream = client.stream
      const messageId = packet.messageId
      void handled.then(() => {
        this.unacked--
        acks.ack(stream, messageId)
      })
      done(DEFERRED_ACK)
    }
    client.on('error', (err) => log.warn({ err: err.message }, 'MQTT error'))
    // Ready only once the broker holds the subscriptions: a connection whose SUBSCRIBE
    // was never acknowledged receives nothing (issue 14, item 1: with Redis, aedes 1.2
    // never sent that SUBACK while /api/ready said the ingest was fine).
    client.on('connect', (connack) => {
      log.info({ sessionPresent: connack.sessionPresent }, 'MQTT connected')
      clearTimeout(this.subackTimer)
      // A session the broker kept still has its subscriptions [MQTT-3.1.2-4]. Moving to
      // a renewed token is no break in listening: the broker kept queueing.
      if (connack.sessionPresent) {
        this.listeningSince ??= new Date()
        return
      }
      this.listeningSince = undefined
      this.subackTimer = setTimeout(
        () => log.error('MQTT: no SUBACK from the broker after 10 s: not ready'),
        10_000,
      ).unref()
      client.subscribe(
        Object.fromEntries(API_SUBSCRIPTIONS.map((s) => [s.filter, { qos: s.qos }])),
        (err, granted) => {
          clearTimeout(this.subackTimer)
          if (err) return log.error({ err, granted }, 'MQTT subscribe failed: not ready')
          log.info({ granted }, 'MQTT subscribed')
          this.listeningSince = new Date()
        },
      )
    })
    client.on('close', () => {
      clearTimeout(this.subackTimer)
      if (this.handingOver) this.handingOver = false
      else this.listeningSince = undefined
    })
    client.connect()
  }

  async end(drop: boolean): Promise<void> {
    clearTimeout(this.subackTimer)
    this.listeningSince = undefined
    if (drop) {
      this.client.handleMessage = (_packet, done) => done(DEFERRED_ACK)
      await this.client.endAsync(true)
      return
    }
    await endClient(this.client)
  }
}

/** A clean DISCONNECT, or the connection dropped after 2 s (the broker may be away). */
async function endClient(client: MqttClient): Promise<void> {
  // mqtt.js would wait forever for acknowledgements from a broker that is away.
  await Promise.race([client.endAsync(), new Promise((r) => setTimeout(r, 2_000).unref())])
  if (client.connected || client.disconnecting) await client.endAsync(true)
}

/**
 * Publishes at QoS 1 or 2 and resolves on PUBACK or PUBCOMP, or rejects after `timeoutMs`
 * (the broker may be away: mqtt.js keeps the message and sends it on reconnect).
 */
function publishAcked(
  client: MqttClient,
  topic: string,
  payload: object,
  qos: 1 | 2,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(`no ${qos === 2 ? 'PUBCOMP' : 'PUBACK'} for ${topic} within ${timeoutMs} ms`),
        ),
      timeoutMs,
    )
    client.publishAsync(topic, JSON.stringify(payload), { qos }).then(
      () => {
        clearTimeout(timer)
        resolve()
      },
      (err: unknown) => {
        clearTimeout(timer)
        reject(err instanceof Error ? err : new Error(String(err)))
      },
    )
  })
}
