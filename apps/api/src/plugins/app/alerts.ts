import fp from 'fastify-plugin'
import { buildTopic } from '@skyline/schemas'
import { AlertEvaluator } from '../../alerts/evaluator.ts'
import { AlertFacts } from '../../alerts/facts.ts'
import { AlertRepository } from '../../alerts/repository.ts'
import { AlertService } from '../../alerts/service.ts'
import { WebhookSender } from '../../alerts/webhook.ts'
import type { IngestItem } from '../../ingest/items.ts'

declare module 'fastify' {
  interface FastifyInstance {
    alerts: Alerts
  }
}

export interface Alerts {
  /** The one writer of alerts (`service.repository` reads them) and the stream of their changes. */
  readonly service: AlertService
  /** The leader's evaluation of the rules. */
  readonly evaluator: AlertEvaluator
  /** The webhook's sender, with ALERT_WEBHOOK_URL. */
  readonly webhook: WebhookSender | undefined
  /** An ingest batch committed (on the leader): its points are judged on the next round. */
  committed(items: readonly IngestItem[]): void
}

/** Delivered webhook rows are kept this long, ms (a week), then pruned; dead ones stay. */
const KEEP_DELIVERED_MS = 7 * 86_400_000

/**
 * Alerts (issue 18; docs/architecture.md "Alerts"): the service every instance writes
 * through (the leader's openings and resolutions, any instance's acknowledgements); the
 * evaluation and the webhook's sender on the leader only. Each change committed here goes
 * out on MQTT (`fleet/{f}/alerts`, QoS 1, through this instance's command connection), is
 * counted, and wakes the webhook's sender; the live stream and the change feed subscribe
 * to the service themselves.
 */
export default fp<{ now?: () => Date }>(
  async (fastify, opts) => {
    const { config, database, leadership, metrics, log } = fastify
    const fence = leadership.fence.bind(leadership)
    const repository = new AlertRepository(database.db)
    const service = new AlertService(repository, database.db, {
      fence,
      webhook: config.ALERT_WEBHOOK_URL !== undefined,
      ...(opts.now !== undefined && { now: opts.now }),
      onListenerError: (err, alert) =>
        log.error({ err, alertId: alert.id }, 'an alert listener failed'),
    })
    const evaluator = new AlertEvaluator(
      service,
      repository,
      new AlertFacts(database.db),
      fastify.geofences.index,
      {
        battery: {
          lowPct: (fleetId) =>
            config.ALERT_BATTERY_LOW_PCT_BY_FLEET[fleetId] ?? config.ALERT_BATTERY_LOW_PCT,
          clearMarginPct: config.ALERT_BATTERY_CLEAR_MARGIN_PCT,
        },
        staleAfterS: config.ALERT_STALE_S,
        offlineGraceS: config.ALERT_OFFLINE_GRACE_S,
        lateMarginS: config.ALERT_LATE_MARGIN_S,
        sweepMs: config.ALERT_SWEEP_MS,
        listeningSince: () => fastify.mqtt.listeningSince,
        ...(opts.now !== undefined && { now: opts.now }),
        log,
      },
    )
    const webhook =
      config.ALERT_WEBHOOK_URL === undefined || config.ALERT_WEBHOOK_SECRET === undefined
        ? undefined
        : new WebhookSender(database.db, repository, {
            url: config.ALERT_WEBHOOK_URL,
            secret: config.ALERT_WEBHOOK_SECRET,
            maxAttempts: config.ALERT_WEBHOOK_MAX_ATTEMPTS,
            backoffMs: config.ALERT_WEBHOOK_BACKOFF_MS,
            backoffMaxMs: config.ALERT_WEBHOOK_BACKOFF_MAX_MS,
            timeoutMs: config.ALERT_WEBHOOK_TIMEOUT_MS,
            fence,
            outcome: ({ kind, row, error }) => {
              if (kind === 'delivered') metrics.webhookDelivered.inc()
              else if (kind === 'retry') metrics.webhookRetries.inc()
              else {
                metrics.webhookDeadLetters.inc()
                log.error(
                  { outboxId: row.id, alertId: row.alertId, error },
                  'alert webhook: given up after its last attempt (dead letter)',
                )
              }
            },
          })

    let leading = false
    const sendWebhook = () => {
      if (leading && webhook !== undefined)
        webhook.pass().catch((err: unknown) => log.warn({ err }, 'alert webhook: pass failed'))
    }

    service.onChange((alert) => {
      if (alert.state === 'open') metrics.alertsOpened.inc({ kind: alert.kind })
      if (alert.state === 'resolved') metrics.alertsResolved.inc({ kind: alert.kind })
      const topic = buildTopic({ kind: 'fleet', fleetId: alert.fleetId, channel: 'alerts' })
      fastify.mqtt.publishAlert(topic, alert).catch((err: unknown) => {
        metrics.alertPublishFailures.inc()
        log.warn({ err, alertId: alert.id }, 'alert not yet published on MQTT')
      })
      sendWebhook()
    })
    // A delivery failed (by the dispatcher: perhaps its route is blocked): judged at once.
    const unsubscribe = fastify.lifecycle.changes.subscribe((_id, status) => {
      if (leading && status === 'failed') evaluator.sweepSoon()
    })

    let timers: NodeJS.Timeout[] = []
    fastify.leadership.lead('alerts', {
      async start() {
        leading = true
        await evaluator.start()
        if (webhook !== undefined) {
          // What waits (from before a restart, or a retry falling due) goes at least this often.
          timers.push(setInterval(sendWebhook, Math.min(1_000, config.ALERT_WEBHOOK_BACKOFF_MS)))
          timers.push(
            setInterval(
              () =>
                void repository
                  .pruneDelivered(new Date(Date.now() - KEEP_DELIVERED_MS))
                  .catch((err: unknown) => log.warn({ err }, 'alert webhook: prune failed')),
              3_600_000,
            ),
          )
          sendWebhook()
        }
      },
      async stop() {
        leading = false
        timers.forEach(clearInterval)
        timers = []
        await evaluator.stop()
        await webhook?.idle().catch(() => {})
      },
    })

    fastify.decorate('alerts', {
      service,
      evaluator,
      webhook,
      committed(items) {
        if (!leading) return
        evaluator.committed(items)
        // A drone's or a station's presence changed: drone_lost and station_offline now.
        if (items.some((i) => i.kind === 'drone-status' || i.kind === 'station-status'))
          evaluator.sweepSoon()
      },
    } satisfies Alerts)
    fastify.addHook('onClose', async () => {
      unsubscribe()
      leading = false
      timers.forEach(clearInterval)
      await evaluator.stop()
    })
  },
  {
    name: 'alerts',
    dependencies: ['database', 'metrics', 'leadership', 'mqtt', 'geofences', 'deliveries'],
  },
)
