import { describe, expect, it } from 'vitest'
import {
  API_SUBSCRIPTIONS,
  buildTopic,
  DRONE_CHANNELS,
  FLEET_CHANNELS,
  parseTopic,
  STATION_CHANNELS,
  TOPIC_SPECS,
  TopicError,
  topicKind,
  type DroneChannel,
  type TopicAddress,
  type TopicKind,
} from '../src/index.ts'

const LONGEST_ID = 'x'.repeat(64)

const ADDRESSES: TopicAddress[] = [
  ...DRONE_CHANNELS.map((channel) => ({
    kind: 'drone' as const,
    fleetId: 'f1',
    droneId: 'd-1_A',
    channel,
  })),
  ...STATION_CHANNELS.map((channel) => ({
    kind: 'station' as const,
    fleetId: 'f1',
    stationId: 'st-9',
    channel,
  })),
  ...FLEET_CHANNELS.map((channel) => ({ kind: 'fleet' as const, fleetId: 'f1', channel })),
]

const topicOf = (addr: TopicAddress): string => {
  switch (addr.kind) {
    case 'drone':
      return `fleet/f1/drones/${addr.droneId}/${addr.channel}`
    case 'station':
      return `fleet/f1/stations/${addr.stationId}/${addr.channel}`
    case 'fleet':
      return `fleet/f1/${addr.channel}`
  }
}

// MQTT 3.1.1 §4.7: `+` matches exactly one level, `#` (last) matches the rest, parent included.
function matches(filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false
  }
  return f.length === t.length
}

describe('buildTopic and parseTopic', () => {
  it.each(ADDRESSES)('round-trips $kind $channel', (addr) => {
    const topic = buildTopic(addr)
    expect(topic).toBe(topicOf(addr))
    expect(parseTopic(topic)).toEqual(addr)
  })

  it('round-trips 64-character ids', () => {
    const addr: TopicAddress = {
      kind: 'drone',
      fleetId: LONGEST_ID,
      droneId: LONGEST_ID,
      channel: 'telemetry',
    }
    expect(parseTopic(buildTopic(addr))).toEqual(addr)
  })

  it('builds the example topic of the contract', () => {
    const topic = buildTopic({ kind: 'drone', fleetId: 'f1', droneId: 'd1', channel: 'telemetry' })
    expect(topic).toBe('fleet/f1/drones/d1/telemetry')
  })
})

describe('parseTopic', () => {
  it.each([
    '',
    'fleet',
    'fleet/f1/drones/d1',
    'fleet/f1/drones/d1/telemetry/extra',
    '/fleet/f1/drones/d1/telemetry',
    'fleet/f1/drones/d1/telemetry/',
    'fleet//drones/d1/telemetry',
    'fleet/f1/drones//telemetry',
    'fleet/f1/drones/d1/',
    'Fleet/f1/drones/d1/telemetry',
    'fleets/f1/drones/d1/telemetry',
    '$SYS/broker/clients/connected',
    '$SYS/f1/drones/d1/telemetry',
    'fleet/$SYS/drones/d1/status',
    'fleet/+/drones/+/telemetry',
    'fleet/f1/drones/+/status',
    'fleet/#',
    'fleet/f1/drones/d1/#',
    'fleet/f1/drones/d1/requests',
    'fleet/f1/stations/s1/telemetry',
    'fleet/f1/stations/s1/commands',
    'fleet/f1/robots/r1/status',
    'fleet/f1/drone/d1/status',
    'fleet/f1/drones/d1/Telemetry',
    'fleet/f1/drones/d1/status ',
    'fleet/f 1/drones/d1/status',
    'fleet/f1/drones/drön/status',
    `fleet/f1/drones/${'x'.repeat(65)}/status`,
    'fleet/f1/telemetry',
    'fleet/f1/Alerts',
    'fleet/+/alerts',
    'fleet/$SYS/alerts',
    'fleet/f1/alerts/x',
    'fleet/f1/drones/d1/alerts',
  ])('rejects %j', (topic) => {
    expect(parseTopic(topic)).toBeNull()
  })
})

describe('buildTopic', () => {
  const badIds = ['a+b', '+', 'a#b', '#', 'a/b', '$SYS', '$', '', 'x'.repeat(65), 'a b']

  it.each(badIds)('throws TopicError for fleet, drone and station id %j', (id) => {
    const attempts = [
      () => buildTopic({ kind: 'drone', fleetId: id, droneId: 'd1', channel: 'status' }),
      () => buildTopic({ kind: 'drone', fleetId: 'f1', droneId: id, channel: 'status' }),
      () => buildTopic({ kind: 'station', fleetId: 'f1', stationId: id, channel: 'status' }),
    ]
    for (const attempt of attempts) {
      expect(attempt).toThrow(TopicError)
      expect(attempt).toThrow(expect.objectContaining({ code: 'invalid_topic' }))
    }
  })

  it('throws TopicError for a channel that the kind does not have', () => {
    const addr = { kind: 'drone', fleetId: 'f1', droneId: 'd1', channel: 'requests' }
    expect(() => buildTopic(addr as TopicAddress)).toThrow(TopicError)
    const station = { kind: 'station', fleetId: 'f1', stationId: 's1', channel: 'commands' }
    expect(() => buildTopic(station as TopicAddress)).toThrow(TopicError)
    const fleet = { kind: 'fleet', fleetId: 'f1', channel: 'status' }
    expect(() => buildTopic(fleet as TopicAddress)).toThrow(TopicError)
  })

  it('throws TopicError for an unknown kind', () => {
    const addr = { kind: 'robot', fleetId: 'f1', droneId: 'd1', channel: 'status' as DroneChannel }
    expect(() => buildTopic(addr as unknown as TopicAddress)).toThrow(TopicError)
  })
})

describe('TOPIC_SPECS', () => {
  it('matches the topic table of ARCHITECTURE.md', () => {
    expect(TOPIC_SPECS).toEqual({
      'drone/telemetry': { qos: 0, retain: false, publisher: 'drone' },
      'drone/status': { qos: 1, retain: true, publisher: 'drone' },
      'drone/events': { qos: 1, retain: false, publisher: 'drone' },
      'drone/commands': { qos: 2, retain: false, publisher: 'service' },
      'station/status': { qos: 1, retain: true, publisher: 'station' },
      'station/requests': { qos: 1, retain: false, publisher: 'station' },
      'fleet/alerts': { qos: 1, retain: false, publisher: 'service' },
    })
  })

  it.each(ADDRESSES)('has a spec for the kind of $kind $channel', (addr) => {
    const kind = topicKind(addr)
    expect(kind).toBe(`${addr.kind}/${addr.channel}`)
    expect(TOPIC_SPECS).toHaveProperty([kind])
  })
})

describe('API_SUBSCRIPTIONS', () => {
  const built = ADDRESSES.map((addr) => ({ kind: topicKind(addr), topic: buildTopic(addr) }))

  function kindsMatchedBy(filter: string): TopicKind[] {
    return built.filter(({ topic }) => matches(filter, topic)).map(({ kind }) => kind)
  }

  it('uses a matcher that honours + and #', () => {
    expect(matches('fleet/+/drones/+/status', 'fleet/f1/drones/d1/status')).toBe(true)
    expect(matches('fleet/+/drones/+/status', 'fleet/f1/drones/d1/status/x')).toBe(false)
    expect(matches('fleet/+/drones/+/status', 'fleet/f1/stations/s1/status')).toBe(false)
    expect(matches('fleet/#', 'fleet/f1/drones/d1/status')).toBe(true)
    expect(matches('fleet/f2/#', 'fleet/f1/drones/d1/status')).toBe(false)
  })

  it('lists the five wildcard filters of ARCHITECTURE.md', () => {
    expect(API_SUBSCRIPTIONS.map(({ filter }) => filter)).toEqual([
      'fleet/+/drones/+/telemetry',
      'fleet/+/drones/+/status',
      'fleet/+/drones/+/events',
      'fleet/+/stations/+/status',
      'fleet/+/stations/+/requests',
    ])
  })

  it.each(API_SUBSCRIPTIONS)('$filter matches exactly one kind of built topic', ({ filter }) => {
    expect(kindsMatchedBy(filter)).toHaveLength(1)
  })

  it('covers every kind except the commands and alerts the api itself publishes', () => {
    const covered = API_SUBSCRIPTIONS.flatMap(({ filter }) => kindsMatchedBy(filter)).sort()
    const expected = Object.keys(TOPIC_SPECS).filter(
      (kind) => kind !== 'drone/commands' && kind !== 'fleet/alerts',
    )
    expect(covered).toEqual(expected.sort())
  })

  it.each(API_SUBSCRIPTIONS)('subscribes to $filter at QoS 1', ({ filter, qos }) => {
    // The subscription caps delivery QoS, so 1 keeps `--telemetry-qos 1` from being downgraded.
    expect(qos).toBe(1)
    for (const kind of kindsMatchedBy(filter)) {
      expect(qos).toBeGreaterThanOrEqual(TOPIC_SPECS[kind].qos)
    }
  })
})
