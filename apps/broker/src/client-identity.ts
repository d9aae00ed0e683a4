import type { Principal } from '@skyline/auth'

/**
 * Who a connected client is, as the ACL and the per-identity bounds see it. A drone
 * or a station belongs to one fleet; a viewer, a service or an admin to its `fleets`
 * (`'*'`: every fleet; an admin always has every fleet). `anonymous` exists only
 * with MQTT_ALLOW_ANONYMOUS.
 */
export type ClientIdentity =
  | { role: 'drone' | 'station'; id: string; fleet: string }
  | { role: 'viewer' | 'service' | 'admin'; id: string; fleets: '*' | readonly string[] }
  | { role: 'anonymous'; id: string }

/**
 * The identity a verified token grants, or undefined for a drone or a station that
 * does not name exactly one fleet (the authenticator already refuses those; a device
 * in several fleets would have no one topic of its own).
 */
export function identityFor(principal: Principal): ClientIdentity | undefined {
  const { sub: id, role, fleets } = principal
  switch (role) {
    case 'drone':
    case 'station':
      return fleets !== '*' && fleets.length === 1 ? { role, id, fleet: fleets[0]! } : undefined
    case 'admin':
      return { role, id, fleets: '*' }
    case 'viewer':
    case 'service':
      return { role, id, fleets }
  }
}

/** Does `fleets` hold `fleet`? */
export function inFleets(fleets: '*' | readonly string[], fleet: string): boolean {
  return fleets === '*' || fleets.includes(fleet)
}
