import { TOPIC_PREFIX, TOPIC_SPECS, buildTopic, parseTopic, topicKind } from '@skyline/schemas'
import type { TopicAddress } from '@skyline/schemas'
import { inFleets } from './client-identity.ts'
import type { ClientIdentity } from './client-identity.ts'

// The authorization table of ARCHITECTURE.md ("Roles"). Pure functions, so that every
// cell of the table is tested without a broker, and the broker only asks.

/** The device a topic belongs to; none for a fleet's own topic (its alerts). */
function ownerOf(addr: TopicAddress): string | undefined {
  switch (addr.kind) {
    case 'drone':
      return addr.droneId
    case 'station':
      return addr.stationId
    case 'fleet':
      return undefined
  }
}

function isUnderFleets(filter: string): boolean {
  return filter === TOPIC_PREFIX || filter.startsWith(TOPIC_PREFIX + '/')
}

/** May this client publish on this (concrete) topic? */
export function mayPublish(who: ClientIdentity, topic: string): boolean {
  if (who.role === 'anonymous') return isUnderFleets(topic)
  const addr = parseTopic(topic)
  if (addr === null) return false
  // The contract names one publisher per topic kind; a role publishes only those kinds
  // (an admin acts as a service).
  const acting = who.role === 'admin' ? 'service' : who.role
  if (TOPIC_SPECS[topicKind(addr)].publisher !== acting) return false
  switch (who.role) {
    case 'drone':
    case 'station':
      return addr.fleetId === who.fleet && ownerOf(addr) === who.id
    case 'viewer': // publishes nothing: no topic kind names it
    case 'service':
    case 'admin':
      return inFleets(who.fleets, addr.fleetId)
  }
}

/**
 * mayPublish for one client, remembering its answers per topic: a device publishes on
 * the same few topics over and over, and parsing the topic of every message took about
 * 4% of the broker's CPU under load. At most `size` topics are remembered, as the
 * client picks them.
 */
export function publishAuthorizer(who: ClientIdentity, size = 16): (topic: string) => boolean {
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
export function mayLeaveWill(who: ClientIdentity, topic: string): boolean {
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
export function maySubscribe(who: ClientIdentity, filter: string): boolean {
  switch (who.role) {
    case 'drone':
      return (
        filter ===
        buildTopic({ kind: 'drone', fleetId: who.fleet, droneId: who.id, channel: 'commands' })
      )
    case 'station':
      return false
    case 'anonymous':
      // `fleet/#` and anything narrower; a filter starting with a wildcard is wider.
      return isUnderFleets(filter)
    case 'viewer':
    case 'service':
    case 'admin':
      if (who.fleets === '*') return isUnderFleets(filter)
      // `fleet/{f}/#` and anything narrower, for each of its fleets. Ids hold no
      // wildcard characters, so a literal prefix check is exact; a filter with a
      // wildcard for the fleet (`fleet/+/…`) reaches other fleets and is refused.
      return who.fleets.some((fleet) => {
        const own = `${TOPIC_PREFIX}/${fleet}`
        return filter === own || filter.startsWith(own + '/')
      })
  }
}
