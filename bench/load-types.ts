// What the orchestrator sends the load generator (one JSON line on its stdin) and what
// the load generator answers (one JSON line on its stdout).

/** Username, password and client id of one MQTT client. */
export interface Credentials {
  username: string
  password: string
  clientId: string
}

export interface ThroughputConfig {
  mode: 'throughput'
  port: number
  /** The subscriber's broker, when not `port`'s: another broker of a cluster. */
  subscriberPort?: number
  /** The broker process whose CPU time is sampled over the measurement window. */
  brokerPid: number
  /** USER_HZ, the unit of /proc/<pid>/stat CPU times. */
  clockTicksPerS: number
  qos: 0 | 1
  /** Topic of publisher i is `${topicPrefix}d${i}/telemetry`. */
  topicPrefix: string
  filter: string
  publishers: Credentials[]
  subscriber: Credentials
  /** Messages published and not yet received by the subscriber, across all publishers. */
  maxInFlight: number
  /** PUBLISHes without their PUBACK per publisher (QoS 1 only). */
  perPublisherWindow: number
  warmupMs: number
  measureMs: number
  /** Longest wait for the last messages after publishing stops, ms. */
  drainMs: number
}

export interface ThroughputResult {
  /** Messages the subscriber received in the measurement window, per second. */
  msgsPerS: number
  measuredMsgs: number
  measuredS: number
  /** Whole run, warm-up and drain included. */
  sent: number
  received: number
  /** sent - received after the drain. */
  lost: number
  /** Times nothing arrived for a while with messages in flight, which were then written off. */
  stalls: number
  /** Arrivals with a lower seq than one already received from the same publisher (MQTT-4.6.0-6). */
  reordered: number
  /** QoS 1 deliveries the subscriber read at once, unacknowledged (the broker's outgoing window, at least). */
  maxDeliveriesPerRead: number
  /** Publishers whose connection the broker closed during the run. */
  publishersLost: number
  /** Broker CPU time (user + system) per message received in the window, µs. */
  brokerCpuUsPerMsg: number
  /** Broker CPU use in the window, % of one core. */
  brokerCpuPct: number
  /** The load generator's own CPU use in the window, % of one core. */
  loadCpuPct: number
  /** Everything else running on the machine in the window, % of one core: noise to watch. */
  otherCpuPct: number
}

export interface IdleConfig {
  mode: 'idle'
  port: number
  brokerPid: number
  /** Connected first and left out of the figure: they pay for code loaded on first use. */
  warmup: Credentials[]
  clients: Credentials[]
  /** Connections opened at once; more would overflow Mosquitto's listen backlog of 100. */
  batch: number
  /** Wait after the last CONNACK before RSS is read, ms. */
  settleMs: number
  /**
   * Rest before the baseline is read, and again, with the clients connected and idle,
   * before RSS is read a second time: the figure once garbage is collected, ms.
   */
  steadyMs: number
  /**
   * The bundled broker's metrics port: its young generation's size (V8's new space) is
   * read beside each RSS figure. It grows and shrinks by tens of MiB with the garbage
   * collector's pace, whatever the number of connections.
   */
  metricsPort?: number
}

export interface IdleResult {
  clients: number
  rssBeforeBytes: number
  rssAfterBytes: number
  bytesPerClient: number
  /** RSS steadyMs later, and per client against the same baseline. */
  rssSteadyBytes: number
  steadyBytesPerClient: number
  /** The young generation's size at the three readings (with metricsPort). */
  youngGenBytes?: { before: number; after: number; steady: number }
  connectMs: number
}

export type LoadConfig = ThroughputConfig | IdleConfig
export type LoadResult = ThroughputResult | IdleResult
