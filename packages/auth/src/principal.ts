/** The roles of docs/architecture.md ("Roles"): what a token may do, whichever kind it is. */
export const ROLES = ['drone', 'station', 'viewer', 'service', 'admin'] as const
export type Role = (typeof ROLES)[number]

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value)
}

/**
 * Who a verified token names, whichever issued it: one shape for the broker and the
 * api. `fleets` is `'*'` for every fleet (an `admin`, a `service` without a fleet),
 * otherwise the fleet ids, sorted, at least one (exactly one for a drone or a
 * station). `exp` is the token's expiry, epoch seconds; absent, it does not expire.
 * `kind` says who signed it: Skyline's own secret (`device`) or the OIDC issuer.
 */
export interface Principal {
  sub: string
  role: 'drone' | 'station' | 'viewer' | 'service' | 'admin'
  fleets: '*' | readonly string[]
  exp?: number /* epoch s */
  kind: 'device' | 'oidc'
}
