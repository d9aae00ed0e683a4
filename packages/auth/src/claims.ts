import { isValidId } from '@skyline/schemas'
import { TokenError } from './device-tokens.ts'
import { isRole } from './principal.ts'
import type { Principal, Role } from './principal.ts'

/**
 * A claim by dotted path (`realm_access.roles` reads `payload.realm_access.roles`). A
 * claim whose own name holds the dots (Auth0's namespaced `https://example.com/role`)
 * is found first, whole.
 */
export function claimAt(payload: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path]
  let at: unknown = payload
  for (const part of path.split('.')) {
    if (typeof at !== 'object' || at === null || Array.isArray(at) || !Object.hasOwn(at, part)) {
      return undefined
    }
    at = (at as Record<string, unknown>)[part]
  }
  return at
}

/**
 * The Skyline role a claim grants: the claim itself when it is a string naming a role,
 * or the first Skyline role in an array of roles (identity servers list their own
 * beside ours, e.g. Keycloak's `offline_access`).
 */
export function roleFrom(value: unknown, claim: string): Role {
  const candidates: unknown[] = Array.isArray(value) ? value : [value]
  const role = candidates.find(isRole)
  if (role === undefined) {
    throw new TokenError('token_claims', `claim ${claim} names no Skyline role`)
  }
  return role
}

/**
 * The fleets a claim grants: `*` for every fleet, a fleet id, or an array of fleet ids
 * (one of them `*` also means every fleet). Sorted and without repeats, so that the
 * same grant always reads the same.
 */
export function fleetsFrom(value: unknown, claim: string): '*' | readonly string[] {
  const bad = () =>
    new TokenError('token_claims', `claim ${claim} must be "*", a fleet id or an array of them`)
  const items: unknown[] = Array.isArray(value) ? value : [value]
  if (items.length === 0) throw bad()
  if (items.includes('*')) return '*'
  if (!items.every((f): f is string => typeof f === 'string' && isValidId(f))) throw bad()
  return [...new Set(items)].sort()
}

/** Where an OIDC access token carries role and fleets: claim names or dotted paths. */
export interface ClaimPaths {
  /** Default `role`. */
  roleClaim: string
  /** Default `fleet`. */
  fleetClaim: string
}

/**
 * The Principal of an OIDC access token whose signature, issuer, audience and times
 * have been checked. An `admin` has every fleet whatever its fleet claim; a drone or a
 * station names exactly one fleet and has a Skyline id as its subject (both become
 * topic levels).
 */
export function oidcPrincipal(payload: Record<string, unknown>, paths: ClaimPaths): Principal {
  const { sub, exp } = payload
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 255) {
    throw new TokenError('token_claims', 'claim sub must be a string of 1 to 255 characters')
  }
  const role = roleFrom(claimAt(payload, paths.roleClaim), paths.roleClaim)
  const fleets =
    role === 'admin' ? '*' : fleetsFrom(claimAt(payload, paths.fleetClaim), paths.fleetClaim)
  if (role === 'drone' || role === 'station') {
    if (fleets === '*' || fleets.length !== 1) {
      throw new TokenError('token_claims', `a ${role} token names exactly one fleet`)
    }
    if (!isValidId(sub)) {
      throw new TokenError(
        'token_claims',
        `a ${role} token's sub must be an id ([A-Za-z0-9_-]{1,64})`,
      )
    }
  }
  return { sub, role, fleets, ...(typeof exp === 'number' ? { exp } : {}), kind: 'oidc' }
}
