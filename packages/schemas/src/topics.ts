import { isValidId } from './ids.ts'

// The topic grammar of ARCHITECTURE.md: `fleet/{fleetId}/drones/{droneId}/{channel}`,
// `fleet/{fleetId}/stations/{stationId}/{channel}` and, for what concerns a whole fleet,
// `fleet/{fleetId}/{channel}`. Nothing else is a Skyline topic.
export const TOPIC_PREFIX = 'fleet'

export const DRONE_CHANNELS = ['telemetry', 'status', 'events', 'commands'] as const
export const STATION_CHANNELS = ['status', 'requests'] as const
/** A fleet's own channels: its alerts (issue 18). */
export const FLEET_CHANNELS = ['alerts'] as const
export type DroneChannel = (typeof DRONE_CHANNELS)[number]
export type StationChannel = (typeof STATION_CHANNELS)[number]
export type FleetChannel = (typeof FLEET_CHANNELS)[number]

export type TopicAddress =
  | { kind: 'drone'; fleetId: string; droneId: string; channel: DroneChannel }
  | { kind: 'station'; fleetId: string; stationId: string; channel: StationChannel }
  | { kind: 'fleet'; fleetId: string; channel: FleetChannel }

export type TopicKind =
  `drone/${DroneChannel}` | `station/${StationChannel}` | `fleet/${FleetChannel}`

export type QoS = 0 | 1 | 2

export type TopicSpec = {
  readonly qos: QoS
  readonly retain: boolean
  /** Who publishes in normal operation; the broker also publishes `status` as a last will. */
  readonly publisher: 'drone' | 'station' | 'service'
}

export const TOPIC_SPECS: Readonly<Record<TopicKind, TopicSpec>> = {
  // 0 by default: a lost fix is replaced by the next one. The simulator's
  // `--telemetry-qos 1` raises it, which API_SUBSCRIPTIONS leaves room for.
  'drone/telemetry': { qos: 0, retain: false, publisher: 'drone' },
  // Retained so that a new subscriber learns at once who is online.
  'drone/status': { qos: 1, retain: true, publisher: 'drone' },
  'drone/events': { qos: 1, retain: false, publisher: 'drone' },
  // QoS 2: an assignment delivered twice would be a second delivery.
  'drone/commands': { qos: 2, retain: false, publisher: 'service' },
  'station/status': { qos: 1, retain: true, publisher: 'station' },
  'station/requests': { qos: 1, retain: false, publisher: 'station' },
  // The api's alerts: QoS 1 (each change reaches a subscriber at least once), not retained
  // (a fleet has many alerts, and REST lists them; a retained one would be only the last).
  'fleet/alerts': { qos: 1, retain: false, publisher: 'service' },
}

export type ApiSubscription = { readonly filter: string; readonly qos: QoS }

// The subscription QoS caps the QoS of delivery (MQTT 3.1.1 §3.8.4), so telemetry is subscribed
// at 1: publishers at 0 still arrive at 0, and `--telemetry-qos 1` is not downgraded.
export const API_SUBSCRIPTIONS: readonly ApiSubscription[] = [
  { filter: 'fleet/+/drones/+/telemetry', qos: 1 },
  { filter: 'fleet/+/drones/+/status', qos: 1 },
  { filter: 'fleet/+/drones/+/events', qos: 1 },
  { filter: 'fleet/+/stations/+/status', qos: 1 },
  { filter: 'fleet/+/stations/+/requests', qos: 1 },
]

export class TopicError extends Error {
  readonly code = 'invalid_topic'

  constructor(message: string) {
    super(message)
    this.name = 'TopicError'
  }
}

function isOneOf<T extends string>(values: readonly T[], s: string): s is T {
  return (values as readonly string[]).includes(s)
}

function checkId(label: string, id: string): void {
  if (!isValidId(id)) throw new TopicError(`${label} ${JSON.stringify(id)} is not a valid id`)
}

export function buildTopic(addr: TopicAddress): string {
  checkId('fleetId', addr.fleetId)
  // Callers outside TypeScript (or with a cast) can hand in any channel; check at run time too.
  switch (addr.kind) {
    case 'drone':
      checkId('droneId', addr.droneId)
      if (!isOneOf(DRONE_CHANNELS, addr.channel)) {
        throw new TopicError(`unknown drone channel ${JSON.stringify(addr.channel)}`)
      }
      return `${TOPIC_PREFIX}/${addr.fleetId}/drones/${addr.droneId}/${addr.channel}`
    case 'station':
      checkId('stationId', addr.stationId)
      if (!isOneOf(STATION_CHANNELS, addr.channel)) {
        throw new TopicError(`unknown station channel ${JSON.stringify(addr.channel)}`)
      }
      return `${TOPIC_PREFIX}/${addr.fleetId}/stations/${addr.stationId}/${addr.channel}`
    case 'fleet':
      if (!isOneOf(FLEET_CHANNELS, addr.channel)) {
        throw new TopicError(`unknown fleet channel ${JSON.stringify(addr.channel)}`)
      }
      return `${TOPIC_PREFIX}/${addr.fleetId}/${addr.channel}`
    default:
      return unreachable(addr)
  }
}

/** The address of a Skyline topic, or null for any topic outside the grammar. */
export function parseTopic(topic: string): TopicAddress | null {
  const levels = topic.split('/')
  if (levels.length === 3) {
    const [prefix = '', fleetId = '', channel = ''] = levels
    return prefix === TOPIC_PREFIX && isValidId(fleetId) && isOneOf(FLEET_CHANNELS, channel)
      ? { kind: 'fleet', fleetId, channel }
      : null
  }
  if (levels.length !== 5) return null
  // The length is checked, so the defaults never apply; they only narrow away `undefined`.
  const [prefix = '', fleetId = '', collection = '', id = '', channel = ''] = levels
  if (prefix !== TOPIC_PREFIX || !isValidId(fleetId) || !isValidId(id)) return null
  if (collection === 'drones' && isOneOf(DRONE_CHANNELS, channel)) {
    return { kind: 'drone', fleetId, droneId: id, channel }
  }
  if (collection === 'stations' && isOneOf(STATION_CHANNELS, channel)) {
    return { kind: 'station', fleetId, stationId: id, channel }
  }
  return null
}

export function topicKind(addr: TopicAddress): TopicKind {
  switch (addr.kind) {
    case 'drone':
      return `drone/${addr.channel}`
    case 'station':
      return `station/${addr.channel}`
    case 'fleet':
      return `fleet/${addr.channel}`
    default:
      return unreachable(addr)
  }
}

function unreachable(value: never): never {
  throw new TopicError(`unexpected topic address ${JSON.stringify(value)}`)
}
