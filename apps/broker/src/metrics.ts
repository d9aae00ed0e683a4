import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

/** Why a message was not delivered. */
export type DropReason =
  | 'rate_limited' // the publisher went over MQTT_RATE_LIMIT
  | 'not_authorized' // the ACL refused the publish
  | 'slow_subscriber' // QoS 0 to a subscriber whose socket is backed up
  | 'overload' // QoS 0 while the broker had its maximum of messages in flight

export type RefusedAction = 'publish' | 'subscribe' | 'will'

/** The broker's Prometheus metrics, one registry per broker so tests can run several. */
export class BrokerMetrics {
  readonly registry = new Registry()
  readonly connections = new Gauge({
    name: 'skyline_broker_connections',
    help: 'Clients connected now',
    registers: [this.registry],
  })
  private identityCount: () => number = () => 0
  /** Read from the broker when scraped: nothing to update per connection. */
  readonly identities = gaugeOf(
    'skyline_broker_identities',
    'Identities (role, fleet and id of a token) with at least one connection now',
    this.registry,
    () => this.identityCount(),
  )
  /** Counted per message: plain numbers, handed to prom-client when it is scraped. */
  private readonly counts = { in: [0, 0, 0], out: [0, 0, 0] }
  readonly messagesIn = countedByQos(
    'skyline_broker_messages_in_total',
    'PUBLISH packets received from clients, by QoS',
    this.registry,
    this.counts.in,
  )
  readonly messagesOut = countedByQos(
    'skyline_broker_messages_out_total',
    'PUBLISH packets sent to subscribers, by QoS of the publish',
    this.registry,
    this.counts.out,
  )
  readonly dropped = new Counter({
    name: 'skyline_broker_dropped_total',
    help: 'Messages (or deliveries) dropped, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })
  readonly refused = new Counter({
    name: 'skyline_broker_refused_total',
    help: 'Publishes, subscriptions and wills refused by the ACL',
    labelNames: ['action'] as const,
    registers: [this.registry],
  })
  readonly authFailures = new Counter({
    name: 'skyline_broker_auth_failures_total',
    help: 'CONNECTs refused, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })
  /**
   * By reason: `flood`, `packet_too_large`, `slow_subscriber`, `identity_takeover`,
   * `token_expired`, `drain` (closed without its will by a broker that drains, to
   * reconnect to another), and the protocol violations of protocol-checks.ts.
   */
  readonly disconnects = new Counter({
    name: 'skyline_broker_forced_disconnects_total',
    help: 'Clients disconnected by the broker, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })

  constructor(withProcessMetrics = false) {
    // Process metrics (memory, event loop lag) once per process, not per test broker.
    if (withProcessMetrics) collectDefaultMetrics({ register: this.registry })
  }

  /** Where skyline_broker_identities reads its value from. */
  countIdentities(count: () => number): void {
    this.identityCount = count
  }

  countIn(qos: number): void {
    this.counts.in[qos]!++
  }

  countOut(qos: number): void {
    this.counts.out[qos]!++
  }

  drop(reason: DropReason): void {
    this.dropped.inc({ reason })
  }

  /** Current value of a counter or gauge with the given labels; 0 when never touched. */
  async value(metric: Counter | Gauge, labels: Record<string, string> = {}): Promise<number> {
    const { values } = await metric.get()
    const match = values.find((v) =>
      Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want),
    )
    return match?.value ?? 0
  }
}

function gaugeOf(name: string, help: string, registry: Registry, read: () => number): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read())
    },
  })
}

/**
 * A counter by QoS whose counts are kept in `counts` (index: QoS) and added when the
 * registry is read. Why: a labelled inc() hashes its labels on every call, and these
 * two are incremented for every message the broker routes.
 */
function countedByQos(name: string, help: string, registry: Registry, counts: number[]): Counter {
  const added = counts.map(() => 0)
  return new Counter({
    name,
    help,
    labelNames: ['qos'],
    registers: [registry],
    collect() {
      counts.forEach((n, qos) => {
        if (n > added[qos]!) this.inc({ qos }, n - added[qos]!)
        added[qos] = n
      })
    },
  })
}
