import type { Principal } from '@skyline/auth'

export type { Principal }

/** The fleets a read may see: every fleet (`'*'`) or these (none when empty). */
export type FleetScope = '*' | readonly string[]

/** Roles that read the fleet over HTTP and the live stream. Devices do not: see canRead. */
const READERS: ReadonlySet<Principal['role']> = new Set(['viewer', 'service', 'admin'])
/** Roles that dispatch and cancel deliveries. */
const OPERATORS: ReadonlySet<Principal['role']> = new Set(['service', 'admin'])

/**
 * A drone's or a station's token is on the device, in the field: the broker lets it
 * publish its own topics and read its own commands, nothing of its fleet's other
 * devices, and REST keeps to that (403), so a token lifted from one drone does not
 * show where the rest of the fleet is.
 */
export const canRead = (p: Principal): boolean => READERS.has(p.role)
export const canOperate = (p: Principal): boolean => OPERATORS.has(p.role)

/** Whether `fleet` is one of the principal's fleets. */
export const hasFleet = (p: Principal, fleet: string): boolean =>
  p.fleets === '*' || p.fleets.includes(fleet)

/**
 * The fleets a read covers: the principal's, narrowed to `?fleet=` when given. A fleet
 * the principal has no right to reads as an empty scope, exactly like a fleet that does
 * not exist: lists come back empty and single resources 404, so neither fleet nor ids
 * leak.
 */
export function scopeOf(p: Principal, fleet?: string): FleetScope {
  if (fleet === undefined) return p.fleets
  return hasFleet(p, fleet) ? [fleet] : []
}

/** Whether a row of `fleet` is inside `scope`. */
export const inScope = (scope: FleetScope, fleet: string): boolean =>
  scope === '*' || scope.includes(fleet)

/** The same scope spelled once (sorted): what live clients that see the same share. */
export const scopeKey = (scope: FleetScope): string =>
  scope === '*' ? '*' : [...new Set(scope)].sort().join(',')
