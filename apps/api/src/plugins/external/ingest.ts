import fp from 'fastify-plugin'
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import { API_SUBSCRIPTIONS } from '@skyline/schemas'
import { signDeviceToken } from '@skyline/broker/auth'
import { TelemetryPartitions } from '../../db/partitions.ts'
import { AckWriter } from '../../ingest/acks.ts'
import { Batcher } from '../../ingest/batcher.ts'
import { Ingest } from '../../ingest/ingest.ts'
import { deliveriesIn } from '../../ingest/items.ts'
import { EtaEstimator } from '../../ingest/eta.ts'
import { markStale, writeBatch } from '../../ingest/writer.ts'

/** QoS 1 messages received and not yet acknowledged, at most; then mqtt.js waits. */
const MAX_UNACKED = 50_000
/** Tells mqtt.js to send no PUBACK: the ingest sends it after the commit. */
const DEFERRED_ACK = new Error('PUBACK deferred until the commit')

declare module 'fastify' {
  interface FastifyInstance {
    ingest: {
      client: MqttClient
      batcher: Batcher
      ingest: Ingest
      partitions: TelemetryPartitions
      /** The broker holds the ingest's subscriptions: granted in a SUBACK, or kept in its session. */
      readonly subscribed: boolean
    }
  }
}

/**
 * The ingest: one MQTT connection with a service token and a persistent session
 * (fixed client id, clean session 0), the wildcard subscriptions of ARCHITECTURE.md,
 * and a batcher that writes to the database. QoS 1 messages are acknowledged only
 * after their rows are committed, so a crash, a restart or a database outage loses
 * nothing: the broker redelivers what was not acknowledged.
 */
export default fp(
  async (fastify) => {
    const { config, database, tokenSecret } = fastify
    const partitions = new TelemetryPartitions(database.db)
    const eta = new EtaEstimator()
    const batcher = new Batcher(
      (items) => writeBatch(database.db, partitions, eta, items),
      { maxItems: config.INGEST_BATCH_MAX, maxDelayMs: config.INGEST_BATCH_DELAY_MS },
      {
        flushed: (items, ms) => {
          const m = fastify.metrics
          m.batchSize.observe(items.length)
          m.writeSeconds.observe(ms / 1000)
          // The oldest message of the batch waited longest: that is the lag.
          if (items[0] !== undefined)
            m.lagSeconds.observe((Date.now() - items[0].receivedAt.getTime()) / 1000)
          // Publish-to-commit as the map sees it (issue #7), over clocks kept in sync (NTP).
          const committedAt = Date.now()
          for (const item of items)
            if (item.kind === 'telemetry')
              m.commitDelaySeconds.observe((committedAt - item.msg.ts) / 1000)
          m.buffered.set(batcher.buffered)
          fastify.live.committed(items)
          // The delivery plugin registers after this one: a batch may commit before it.
          if (fastify.hasDecorator('deliveries'))
            for (const id of deliveriesIn(items)) fastify.deliveries.changes.emit(id)
        },
        failed: (err, attempt) => {
          fastify.metrics.writeFailures.inc()
          fastify.log.warn({ err, attempt }, 'ingest write failed: retrying')
        },
        healthChanged: (healthy) =>
          fastify.log[healthy ? 'info' : 'error'](
            `ingest ${healthy ? 'writing again' : 'cannot write'}`,
          ),
        dropped: (n) => {
          fastify.metrics.dropped.inc(n)
          fastify.log.warn({ dropped: n }, 'ingest buffer full: oldest QoS 0 telemetry dropped')
        },
        refused: (item, reason) => {
          ingest.rejected++
          fastify.metrics.rejected.inc()
          fastify.metrics.refused.inc()
          fastify.log.warn({ kind: item.kind, reason }, 'ingest: the database refused a message')
        },
        lost: (item, err) => {
          fastify.metrics.lost.inc()
          fastify.log.error({ kind: item.kind, err }, 'ingest: a message could not be stored')
        },
      },
    )
    const ingest = new Ingest(batcher, {
      clock: {
        aheadMaxMs: config.DEVICE_CLOCK_AHEAD_MAX_S * 1000,
        telemetryBehindMaxMs: config.TELEMETRY_RETENTION_DAYS * 86_400_000,
      },
      counted: (kind) => {
        fastify.metrics.received.inc({ kind })
        if (kind === 'rejected') fastify.metrics.rejected.inc()
      },
    })
    let unacked = 0
    const id = config.API_MQTT_CLIENT_ID
    const client = mqtt.connect(config.MQTT_URL, {
      clientId: id,
      username: id,
      password: await signDeviceToken(tokenSecret, { role: 'service', sub: id }),
      clean: false,
      reconnectPeriod: 1_000,
    })
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
      const committed = ingest.handle(packet.topic, packet.payload as Buffer, packet.qos)
      if (committed === undefined || packet.messageId === undefined) return done()
      if (unacked >= MAX_UNACKED) {
        // mqtt.js sends this PUBACK itself: the ones held before it go first.
        void committed.then(() => {
          acks.flush()
          done()
        })
        return
      }
      unacked++
      const stream = client.stream
      const messageId = packet.messageId
      void committed.then(() => {
        unacked--
        acks.ack(stream, messageId)
      })
      done(DEFERRED_ACK)
    }
    client.on('error', (err) => fastify.log.warn({ err: err.message }, 'ingest MQTT error'))
    // Ready only once the broker holds the subscriptions: an ingest that is connected but
    // whose SUBSCRIBE was never acknowledged receives nothing (issue 14, item 1: with
    // Redis, aedes 1.2 never sent that SUBACK while /api/ready said the ingest was fine).
    let subscribed = false
    let subackTimer: NodeJS.Timeout | undefined
    client.on('connect', (connack) => {
      fastify.log.info({ sessionPresent: connack.sessionPresent }, 'ingest connected')
      clearTimeout(subackTimer)
      // A session the broker kept still has its subscriptions [MQTT-3.1.2-4].
      subscribed = connack.sessionPresent
      if (subscribed) return
      subackTimer = setTimeout(
        () => fastify.log.error('ingest: no SUBACK from the broker after 10 s: not ready'),
        10_000,
      ).unref()
      client.subscribe(
        Object.fromEntries(API_SUBSCRIPTIONS.map((s) => [s.filter, { qos: s.qos }])),
        (err, granted) => {
          clearTimeout(subackTimer)
          if (err) return fastify.log.error({ err, granted }, 'ingest subscribe failed: not ready')
          fastify.log.info({ granted }, 'ingest subscribed')
          subscribed = true
        },
      )
    })
    client.on('close', () => {
      clearTimeout(subackTimer)
      subscribed = false
    })
    // Retention: whole days of telemetry older than TELEMETRY_RETENTION_DAYS go, hourly.
    const retain = () => {
      const cutoff = new Date(Date.now() - config.TELEMETRY_RETENTION_DAYS * 86_400_000)
      partitions.dropOlderThan(cutoff).then(
        (dropped) => dropped.length > 0 && fastify.log.info({ dropped }, 'telemetry retention'),
        (err: unknown) => fastify.log.warn({ err }, 'telemetry retention failed'),
      )
    }
    const retention = setInterval(retain, 3_600_000)
    retain()

    // The safety net behind the will: an online drone silent for STALE_AFTER_S is marked
    // stale (in the table and on the live stream); its next telemetry clears it.
    const staleAfterMs = config.STALE_AFTER_S * 1000
    const sweep = () => {
      markStale(database.db, new Date(Date.now() - staleAfterMs)).then(
        (marked) => marked.forEach((d) => fastify.live.droneStale(d.fleetId, d.id)),
        (err: unknown) => fastify.log.warn({ err }, 'stale sweep failed'),
      )
    }
    const staleSweep = setInterval(sweep, Math.min(5_000, staleAfterMs / 2))
    fastify.decorate('ingest', {
      client,
      batcher,
      ingest,
      partitions,
      get subscribed() {
        return subscribed
      },
    })
    fastify.addHook('onClose', async () => {
      clearTimeout(subackTimer)
      clearInterval(retention)
      clearInterval(staleSweep)
      // Stop taking messages, write what was taken, then leave (the session stays).
      // A clean DISCONNECT, unless the broker is away: then mqtt.js would wait forever
      // for acknowledgements, so after 2 s the connection is just dropped.
      await Promise.race([client.endAsync(), new Promise((r) => setTimeout(r, 2_000).unref())])
      if (client.connected || client.disconnecting) await client.endAsync(true)
      await batcher.close()
    })
  },
  { name: 'ingest', dependencies: ['database', 'metrics'] },
)

/**
 * Publishes a command at QoS 2 and resolves on PUBCOMP, or rejects after `timeoutMs`
 * (the broker may be away: mqtt.js keeps the message and sends it on reconnect).
 */
export function publishCommand(
  client: MqttClient,
  topic: string,
  payload: object,
  timeoutMs = 5_000,
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
