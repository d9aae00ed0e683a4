import { TOPIC_PREFIX, TOPIC_SPECS, buildTopic, parseTopic, topicKind } from '@skyline/schemas'
import type { TopicAddress } from '@skyline/schemas'
import type { DeviceIdentity } from '@skyline/auth'

// The authorization table of ARCHITECTURE.md ("Roles"). Pure functions, so that every
// cell of the table is tested without a broker, and the broker only asks.

function ownerOf(addr: TopicAddress): string {
  return addr.kind === 'drone' ? addr.droneId : addr.stationId
}

function isUnderFleets(filter: string): boolean {
  return filter === TOPIC_PREFIX || filter.startsWith(TOPIC_PREFIX + '/')
}

/** May this client publish on this (concrete) topic? */
export function mayPublish(who: DeviceIdentity, topic: string): boolean {
  if (who.role === 'anonymous') return isUnderFleets(topic)
  const addr = parseTopic(topic)
  if (addr === null) return false
  // The contract names one publisher per topic kind; a role publishes only those kinds.
  if (TOPIC_SPECS[topicKind(addr)].publisher !== who.role) return false
  switch (who.role) {
    case 'drone':
    case 'station':
      return addr.fleetId === who.fleet && ownerOf(addr) === who.id
    case 'service':
      return true
  }
}

/**
 * mayPublish for one client, remembering its answers per topic: a device publishes on
 * the same few topics over and over, and parsing the topic of every message took about
 * 4% of the broker's CPU under load. At most `size` topics are remembered, as the
 * client picks them.
 */
export function publishAuthorizer(who: DeviceIdentity, size = 16): (topic: string) => boolean {
  let known: Map<string, boolean> | undefined // created on the first publish: idle clients pay nothing
  return (topic) => {
    known ??= new Map()
    let allowed = known.get(topic)
    if (allowed === undefined) {
      allowed = mayPublish(who, topic)
      if (known.size >= size) known.clear()
      known.set(topic, allowed)
    }
    return allowed
  }
}

/**
 * May a message on this topic be retained? Only where the contract retains (status):
 * a retained command would be replayed to a drone on every new subscription.
 */
export function mayRetain(topic: string): boolean {
  const addr = parseTopic(topic)
  return addr === null || TOPIC_SPECS[topicKind(addr)].retain
}

/** May this client leave a last will on this topic? Only on its own status topic. */
export function mayLeaveWill(who: DeviceIdentity, topic: string): boolean {
  if (who.role === 'anonymous') return isUnderFleets(topic)
  if (who.role !== 'drone' && who.role !== 'station') return false
  const addr = parseTopic(topic)
  return (
    addr !== null &&
    addr.kind === who.role &&
    addr.channel === 'status' &&
    addr.fleetId === who.fleet &&
    ownerOf(addr) === who.id
  )
}

/** May this client subscribe to this topic filter (which may hold wildcards)? */
export function maySubscribe(who: DeviceIdentity, filter: string): boolean {
  switch (who.role) {
    case 'drone':
      return (
        filter ===
        buildTopic({ kind: 'drone', fleetId: who.fleet, droneId: who.id, channel: 'commands' })
      )
    case 'station':
      return false
    case 'service':
    case 'anonymous':
      // `fleet/#` and anything narrower; a filter starting with a wildcard is wider.
      return isUnderFleets(filter)
    case 'viewer': {
      // Ids hold no wildcard characters, so a literal prefix check is exact.
      const own = `${TOPIC_PREFIX}/${who.fleet}`
      return filter === own || filter.startsWith(own + '/')
    }
  }
}
