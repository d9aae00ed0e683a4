import fp from 'fastify-plugin'
import { TelemetryPartitions } from '../../db/partitions.ts'
import { Batcher } from '../../ingest/batcher.ts'
import { Ingest } from '../../ingest/ingest.ts'
import { deliveriesIn } from '../../ingest/items.ts'
import { writeBatch } from '../../ingest/writer.ts'

declare module 'fastify' {
  interface FastifyInstance {
    ingest: {
      batcher: Batcher
      ingest: Ingest
      partitions: TelemetryPartitions
    }
  }
}

/**
 * The ingest: every message of the api's MQTT connection, decoded (or rejected), batched
 * and written in one transaction per batch; QoS 1 messages are acknowledged after their
 * batch commits. What the facts mean for deliveries is the lifecycle's to decide, inside
 * that transaction; the deliveries a batch touched are told once it commits.
 */
export default fp(
  async (fastify) => {
    const { config, database, lifecycle } = fastify
    const partitions = new TelemetryPartitions(database.db)
    const batcher = new Batcher(
      (items) =>
        writeBatch(database.db, partitions, lifecycle, items, (tx) => fastify.leadership.fence(tx)),
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
          fastify.changeFeed.committed(items)
          fastify.alerts.committed(items)
          for (const id of deliveriesIn(items)) lifecycle.changes.emit(id)
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
    fastify.mqtt.consume((topic, payload, qos) => ingest.handle(topic, payload, qos))
    fastify.decorate('ingest', { batcher, ingest, partitions })
    // The leader listens on the ingest session. One that loses the lead drops the session
    // at once and forgets what it holds unwritten: the broker redelivers what it did not
    // acknowledge to the instance that takes the session over.
    fastify.leadership.lead('ingest', {
      start: () => fastify.mqtt.listen(),
      async stop(lost) {
        if (lost) {
          await fastify.mqtt.stopListening({ drop: true })
          batcher.discard()
          return
        }
        await fastify.mqtt.stopListening()
        await batcher.close()
      },
    })
    fastify.addHook('onClose', async () => {
      // Stop taking messages, write what was taken, then leave (the session stays).
      await fastify.mqtt.end()
      await batcher.close()
    })
  },
  {
    name: 'ingest',
    dependencies: [
      'database',
      'metrics',
      'mqtt',
      'deliveries',
      'live',
      'leadership',
      'change-feed',
      'alerts',
    ],
  },
)
