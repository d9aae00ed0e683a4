import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: ApiMetrics
  }
}

/** The api's Prometheus metrics, one registry per app so tests can build several. */
export class ApiMetrics {
  readonly registry = new Registry()
  readonly received = new Counter({
    name: 'skyline_ingest_messages_total',
    help: 'MQTT messages taken by the ingest, by topic kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  })
  readonly rejected = new Counter({
    name: 'skyline_ingest_rejected_total',
    help: 'Messages that did not decode or that the database refused (stored as dead letters)',
    registers: [this.registry],
  })
  readonly refused = new Counter({
    name: 'skyline_ingest_refused_total',
    help: 'Messages that decoded but whose rows the database refused (stored as dead letters)',
    registers: [this.registry],
  })
  readonly lost = new Counter({
    name: 'skyline_ingest_lost_total',
    help: 'Messages acknowledged unstored: refused even as dead letters (a bug if ever above 0)',
    registers: [this.registry],
  })
  readonly batchSize = new Histogram({
    name: 'skyline_ingest_batch_size',
    help: 'Messages written per transaction',
    buckets: [1, 10, 50, 100, 500, 1000, 2000, 5000],
    registers: [this.registry],
  })
  readonly writeSeconds = new Histogram({
    name: 'skyline_db_write_seconds',
    help: 'Time to write one batch (the database latency the ingest sees)',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  })
  readonly writeFailures = new Counter({
    name: 'skyline_db_write_failures_total',
    help: 'Batch writes that failed and were retried',
    registers: [this.registry],
  })
  readonly lagSeconds = new Histogram({
    name: 'skyline_ingest_lag_seconds',
    help: 'From a message arriving to its rows being committed',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
    registers: [this.registry],
  })
  readonly commitDelaySeconds = new Histogram({
    name: 'skyline_ingest_commit_delay_seconds',
    help: "From a telemetry message's own ts (the drone's clock) to its rows being committed",
    buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30],
    registers: [this.registry],
  })
  readonly buffered = new Gauge({
    name: 'skyline_ingest_buffered',
    help: 'Messages waiting to be written',
    registers: [this.registry],
  })
  readonly dropped = new Counter({
    name: 'skyline_ingest_dropped_total',
    help: 'QoS 0 telemetry dropped because the buffer was full during a database outage',
    registers: [this.registry],
  })
  readonly leader = new Gauge({
    name: 'skyline_api_leader',
    help: '1 while this instance leads (runs the ingest session and the dispatcher), 0 otherwise',
    registers: [this.registry],
  })
  readonly liveClients = new Gauge({
    name: 'skyline_live_clients',
    help: 'Clients of the live stream (/api/live)',
    registers: [this.registry],
  })
  readonly rateLimited = new Counter({
    name: 'skyline_http_rate_limited_total',
    help: 'Requests answered 429 rate_limited: writes (per principal), auth_failures (per address)',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  })
  readonly liveRefused = new Counter({
    name: 'skyline_live_refused_total',
    help: 'Live stream connections refused: full, address_full (too many from one address), origin',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })
  readonly liveDropped = new Counter({
    name: 'skyline_live_dropped_total',
    help: 'Live clients dropped: send_budget (too much unread), lag (a ping unanswered too long), token_expired (closed at its token expiry)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })
  readonly liveSnapshots = new Counter({
    name: 'skyline_live_snapshots_total',
    help: 'Live stream snapshots built (shared by the clients that connect while one is current)',
    registers: [this.registry],
  })

  readonly alertsOpened = new Counter({
    name: 'skyline_alerts_opened_total',
    help: 'Alerts opened, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  })
  readonly alertsResolved = new Counter({
    name: 'skyline_alerts_resolved_total',
    help: 'Alerts resolved (their condition cleared), by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  })
  readonly alertPublishFailures = new Counter({
    name: 'skyline_alert_publish_failures_total',
    help: 'Alert changes not acknowledged by the broker on fleet/{f}/alerts in time (QoS 1)',
    registers: [this.registry],
  })
  readonly webhookDelivered = new Counter({
    name: 'skyline_alert_webhook_delivered_total',
    help: 'Alert changes the webhook receiver took (2xx)',
    registers: [this.registry],
  })
  readonly webhookRetries = new Counter({
    name: 'skyline_alert_webhook_retries_total',
    help: 'Webhook attempts that failed and will be tried again',
    registers: [this.registry],
  })
  readonly webhookDeadLetters = new Counter({
    name: 'skyline_alert_webhook_dead_letters_total',
    help: 'Alert changes given up after ALERT_WEBHOOK_MAX_ATTEMPTS (dead letters in alert_webhook_outbox)',
    registers: [this.registry],
  })

  constructor() {
    collectDefaultMetrics({ register: this.registry })
  }
}

/** `/metrics` in Prometheus text format. */
export default fp(
  async (fastify) => {
    const metrics = new ApiMetrics()
    fastify.decorate('metrics', metrics)
    fastify.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
    })
  },
  { name: 'metrics' },
)
