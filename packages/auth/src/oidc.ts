import { createRemoteJWKSet, decodeJwt, errors, jwtVerify } from 'jose'
import type { JWTVerifyGetKey } from 'jose'
import { z } from 'zod'
import { oidcPrincipal } from './claims.ts'
import { TokenError } from './device-tokens.ts'
import type { Principal } from './principal.ts'

/** Where an OIDC issuer is and what its access tokens for Skyline carry. */
export interface OidcOptions {
  /** OIDC_ISSUER: the issuer identifier, compared exactly with a token's `iss`. */
  issuer: string
  /** OIDC_AUDIENCE: the `aud` a token must name (Skyline as the resource server). */
  audience: string
  /** OIDC_ROLE_CLAIM: claim name or dotted path of the role. Default `role`. */
  roleClaim?: string
  /** OIDC_FLEET_CLAIM: claim name or dotted path of the fleets. Default `fleet`. */
  fleetClaim?: string
  /** Clock skew allowed on `exp` and `nbf`, s. Default 30. */
  clockToleranceS?: number
}

/**
 * Asymmetric algorithms only: an HS256 token is Skyline's own, and a symmetric key an
 * issuer shared with us would let anyone holding it mint tokens. (`Ed25519` is the
 * fully specified name of EdDSA over Ed25519, RFC 9864.)
 */
export const OIDC_ALGORITHMS = ['RS256', 'ES256', 'EdDSA', 'Ed25519'] as const

/** Default clock skew on `exp` and `nbf`, s. */
export const DEFAULT_CLOCK_TOLERANCE_S = 30

/** A discovery document that failed is not asked for again before this, ms. */
const DISCOVERY_RETRY_MS = 5_000
/** Longest wait for the discovery document and the keys, ms. */
const FETCH_TIMEOUT_MS = 5_000

/** The issuer's keys once discovered; a failed discovery is kept a while, then retried. */
interface KeySet {
  at: number
  jwks: Promise<JWTVerifyGetKey>
  failed?: boolean
}

const DiscoverySchema = z.object({ issuer: z.string(), jwks_uri: z.url() })

/**
 * Verifies access tokens of one OIDC issuer. Its keys come from the `jwks_uri` of its
 * discovery document, both fetched on the first token that names it; jose keeps the
 * keys (10 min) and fetches them again for a `kid` it does not know (at most once
 * every 30 s, so that made-up kids cannot make us hammer the issuer).
 */
export function oidcVerifier(options: OidcOptions): (token: string) => Promise<Principal> {
  const paths = {
    roleClaim: options.roleClaim ?? 'role',
    fleetClaim: options.fleetClaim ?? 'fleet',
  }
  const clockTolerance = options.clockToleranceS ?? DEFAULT_CLOCK_TOLERANCE_S
  let keys: KeySet | undefined

  function keySet(): Promise<JWTVerifyGetKey> {
    if (keys === undefined || (keys.failed && Date.now() - keys.at > DISCOVERY_RETRY_MS)) {
      const entry: KeySet = {
        at: Date.now(),
        jwks: discover(options.issuer).then((jwksUri) =>
          createRemoteJWKSet(new URL(jwksUri), { timeoutDuration: FETCH_TIMEOUT_MS }),
        ),
      }
      entry.jwks.catch(() => {
        entry.failed = true
      })
      keys = entry
    }
    return keys.jwks
  }

  return async (token) => {
    // The issuer is checked before anything is fetched: a token of another issuer
    // costs no request.
    let iss: unknown
    try {
      iss = decodeJwt(token).iss
    } catch {
      throw new TokenError('token_invalid', 'token is not a JWT')
    }
    if (iss !== options.issuer) {
      throw new TokenError('token_invalid', 'token issuer is not OIDC_ISSUER')
    }
    let jwks: JWTVerifyGetKey
    try {
      jwks = await keySet()
    } catch (err) {
      throw new TokenError(
        'issuer_unavailable',
        `OIDC discovery failed: ${err instanceof Error ? err.message : String(err)}`,
      )
    }
    try {
      const { payload } = await jwtVerify(token, jwks, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: [...OIDC_ALGORITHMS],
        clockTolerance,
        requiredClaims: ['sub', 'exp'],
      })
      return oidcPrincipal(payload, paths)
    } catch (err) {
      throw tokenError(err)
    }
  }
}

/** The jwks_uri of an issuer's discovery document (OpenID Connect Discovery 1.0 §4). */
async function discover(issuer: string): Promise<string> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`
  const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) })
  if (!res.ok) throw new Error(`${url} answered ${res.status}`)
  const doc = DiscoverySchema.safeParse(await res.json())
  if (!doc.success) throw new Error(`${url} has no valid issuer and jwks_uri`)
  // §4.3: the document's issuer MUST be identical to the one it was fetched for.
  if (doc.data.issuer !== issuer) throw new Error(`${url} names issuer ${doc.data.issuer}`)
  return doc.data.jwks_uri
}

/** jose's refusals as TokenErrors; the message says which check failed, never the token. */
function tokenError(err: unknown): TokenError {
  if (err instanceof TokenError) return err
  if (err instanceof errors.JWTExpired) return new TokenError('token_expired', 'token expired')
  if (err instanceof errors.JWTClaimValidationFailed) {
    const what: Record<string, string> = {
      aud: 'token audience is not OIDC_AUDIENCE',
      iss: 'token issuer is not OIDC_ISSUER',
      nbf: 'token is not valid yet (nbf)',
    }
    return new TokenError(
      'token_invalid',
      what[err.claim] ?? `token claim ${err.claim} is not valid`,
    )
  }
  if (err instanceof errors.JOSEAlgNotAllowed) {
    return new TokenError(
      'token_invalid',
      `token algorithm is not one of ${OIDC_ALGORITHMS.join(', ')}`,
    )
  }
  if (err instanceof errors.JWKSNoMatchingKey) {
    return new TokenError('token_invalid', 'token is signed by a key the issuer does not publish')
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new TokenError('token_invalid', 'token signature does not verify')
  }
  if (
    err instanceof errors.JWKSTimeout ||
    err instanceof errors.JWKSInvalid ||
    !(err instanceof errors.JOSEError)
  ) {
    // The keys could not be fetched (network, timeout, not a JWKS): not the token's fault.
    return new TokenError('issuer_unavailable', 'the OIDC issuer keys cannot be fetched')
  }
  return new TokenError('token_invalid', 'token does not verify')
}
