import fp from 'fastify-plugin'
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import { generate } from 'mqtt-packet'
import { API_SUBSCRIPTIONS } from '@skyline/schemas'
import type { DroneCommand } from '@skyline/schemas'
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
  client: MqttClient
  /** The broker holds the api's subscriptions: granted in a SUBACK, or kept in its session. */
  readonly subscribed: boolean
  /** Since when the api has been subscribed without a break; undefined while it is not. */
  readonly listeningSince: Date | undefined
  /** Publishes a command to a drone at QoS 2: resolves on PUBCOMP, rejects after 5 s. */
  sendCommand(topic: string, command: DroneCommand): Promise<void>
  /** Who takes the messages; set once, before the app is ready (it connects then). */
  consume(consumer: Consumer): void
  /** Leaves (the session stays): a clean DISCONNECT, or a dropped connection after 2 s. */
  end(): Promise<void>
}

/**
 * The api's MQTT connection: a service token (renewed before it expires when it comes
 * from the OIDC issuer), a persistent session (fixed client id,
 * clean session 0) and the wildcard subscriptions of docs/architecture.md. QoS 1
 * messages are acknowledged only once the consumer is done with them (the ingest: after
 * the commit), so a crash, a restart or a database outage loses nothing: the broker
 * redelivers what was not acknowledged. Connects when the app is ready, so that no
 * message arrives before its consumer.
 */
export default fp(
  async (fastify) => {
    const { config, tokenSecret } = fastify
    const id = config.API_MQTT_CLIENT_ID
    const credentials = await mqttCredentials(config, tokenSecret)
    const client = mqtt.connect(config.MQTT_URL, {
      clientId: id,
      username: credentials.username,
      password: credentials.token.accessToken,
      clean: false,
      reconnectPeriod: 1_000,
      manualConnect: true,
    })
    let consumer: Consumer | undefined
    let unacked = 0
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
      const handled = consumer!(packet.topic, packet.payload as Buffer, packet.qos)
      if (handled === undefined || packet.messageId === undefined) return done()
      if (unacked >= MAX_UNACKED) {
        // mqtt.js sends this PUBACK itself: the ones held before it go first.
        void handled.then(() => {
          acks.flush()
          done()
        })
        return
      }
      unacked++
      const stream = client.stream
      const messageId = packet.messageId
      void handled.then(() => {
        unacked--
        acks.ack(stream, messageId)
      })
      done(DEFERRED_ACK)
    }
    client.on('error', (err) => fastify.log.warn({ err: err.message }, 'MQTT error'))
    // MQTT 3.1.1 cannot re-authenticate a connection, and the broker closes it when its
    // token expires (firing no will for the api, which has none, but breaking the
    // stream). Before then the api moves to the renewed token: DISCONNECT, which ends the
    // connection cleanly, then mqtt.js's own reconnect (its stores kept) on the same
    // persistent session, which queued what arrived meanwhile. What was received and not
    // yet acknowledged is redelivered; the ingest stores a message once.
    let handingOver = false
    const renewal =
      credentials.renew &&
      keepRenewed(
        credentials.token,
        credentials.renew,
        (next) => {
          client.options.password = next.accessToken
          if (!client.connected) return
          fastify.log.info('MQTT: moving to the renewed token')
          handingOver = true
          client.stream.write(generate({ cmd: 'disconnect' }))
        },
        (err) => fastify.log.error({ err: err.message }, 'MQTT token renewal failed: trying again'),
      )
    // Ready only once the broker holds the subscriptions: a connection whose SUBSCRIBE
    // was never acknowledged receives nothing (issue 14, item 1: with Redis, aedes 1.2
    // never sent that SUBACK while /api/ready said the ingest was fine).
    let listeningSince: Date | undefined
    let subackTimer: NodeJS.Timeout | undefined
    client.on('connect', (connack) => {
      fastify.log.info({ sessionPresent: connack.sessionPresent }, 'MQTT connected')
      clearTimeout(subackTimer)
      // A session the broker kept still has its subscriptions [MQTT-3.1.2-4]. Moving to
      // a renewed token is no break in listening: the broker kept queueing.
      if (connack.sessionPresent) {
        listeningSince ??= new Date()
        return
      }
      listeningSince = undefined
      subackTimer = setTimeout(
        () => fastify.log.error('MQTT: no SUBACK from the broker after 10 s: not ready'),
        10_000,
      ).unref()
      client.subscribe(
        Object.fromEntries(API_SUBSCRIPTIONS.map((s) => [s.filter, { qos: s.qos }])),
        (err, granted) => {
          clearTimeout(subackTimer)
          if (err) return fastify.log.error({ err, granted }, 'MQTT subscribe failed: not ready')
          fastify.log.info({ granted }, 'MQTT subscribed')
          listeningSince = new Date()
        },
      )
    })
    client.on('close', () => {
      clearTimeout(subackTimer)
      if (handingOver) handingOver = false
      else listeningSince = undefined
    })
    let ended: Promise<void> | undefined
    const end = () =>
      (ended ??= (async () => {
        clearTimeout(subackTimer)
        renewal?.stop()
        // mqtt.js would wait forever for acknowledgements from a broker that is away.
        await Promise.race([client.endAsync(), new Promise((r) => setTimeout(r, 2_000).unref())])
        if (client.connected || client.disconnecting) await client.endAsync(true)
      })())
    fastify.decorate('mqtt', {
      client,
      get subscribed() {
        return listeningSince !== undefined
      },
      get listeningSince() {
        return listeningSince
      },
      sendCommand: (topic, command) => publishQos2(client, topic, command, COMMAND_TIMEOUT_MS),
      consume(c) {
        if (consumer !== undefined) throw new Error('the MQTT connection has a consumer already')
        consumer = c
      },
      end,
    } satisfies MqttConnection)
    fastify.addHook('onReady', () => {
      if (consumer === undefined) throw new Error('the MQTT connection has no consumer')
      client.connect()
    })
    fastify.addHook('onClose', end)
  },
  { name: 'mqtt' },
)

/**
 * Publishes at QoS 2 and resolves on PUBCOMP, or rejects after `timeoutMs` (the broker
 * may be away: mqtt.js keeps the message and sends it on reconnect).
 */
function publishQos2(
  client: MqttClient,
  topic: string,
  payload: object,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no PUBCOMP for ${topic} within ${timeoutMs} ms`)),
      timeoutMs,
    )
    client.publishAsync(topic, JSON.stringify(payload), { qos: 2 }).then(
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
