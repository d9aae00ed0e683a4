import { webcrypto } from 'node:crypto'
import { SignJWT, errors, jwtVerify } from 'jose'
import type { JWTPayload } from 'jose'
import { z } from 'zod'
import { IdSchema } from '@skyline/schemas'
import type { Principal } from './principal.ts'

/** The roles a device token may carry (docs/architecture.md, "Roles"). */
export const DEVICE_ROLES = ['drone', 'station', 'service', 'viewer'] as const
export type DeviceRole = (typeof DEVICE_ROLES)[number]

/**
 * What a device token grants (verifyDeviceToken). `fleet` is absent only for
 * `service`, which then works across fleets.
 */
export type DeviceIdentity =
  | { role: 'drone' | 'station' | 'viewer'; id: string; fleet: string }
  | { role: 'service'; id: string; fleet?: string }

const ClaimsSchema = z.discriminatedUnion('role', [
  z.object({ role: z.enum(['drone', 'station', 'viewer']), sub: IdSchema, fleet: IdSchema }),
  z.object({ role: z.literal('service'), sub: IdSchema, fleet: IdSchema.optional() }),
])

export type DeviceClaims = z.input<typeof ClaimsSchema>

/**
 * A token that does not verify: bad signature, wrong issuer or audience, malformed
 * (`token_invalid`), expired (`token_expired`), claims that grant nothing Skyline knows
 * (`token_claims`); or an OIDC token that cannot be checked now because its issuer's
 * discovery document or keys cannot be fetched (`issuer_unavailable`, not the token's
 * fault). Messages never quote the token.
 */
export class TokenError extends Error {
  constructor(
    readonly code: 'token_invalid' | 'token_expired' | 'token_claims' | 'issuer_unavailable',
    message: string,
  ) {
    super(message)
  }
}

/** Skyline's own tokens are HS256; an OIDC issuer's are asymmetric, so the header tells them apart. */
export const DEVICE_TOKEN_ALG = 'HS256'
const ALG = DEVICE_TOKEN_ALG

let lastKey: { secret: string; key: Promise<webcrypto.CryptoKey> } | undefined

/**
 * The HMAC key for `secret`, imported once: given the raw bytes, jose imports a
 * WebCrypto key on every call (a verification took 49 µs with that, 25 µs without).
 * A process has one secret; the last one is kept.
 */
function key(secret: string): Promise<webcrypto.CryptoKey> {
  if (lastKey?.secret !== secret) {
    const raw = new TextEncoder().encode(secret)
    const params = { name: 'HMAC', hash: 'SHA-256' }
    lastKey = {
      secret,
      key: webcrypto.subtle.importKey('raw', raw, params, false, ['sign', 'verify']),
    }
  }
  return lastKey.key
}

/**
 * Signs a device token (JWT, HS256).
 * @param expiresInS lifetime in seconds; omitted, the token does not expire.
 */
export async function signDeviceToken(
  secret: string,
  claims: DeviceClaims,
  expiresInS?: number,
): Promise<string> {
  const parsed = ClaimsSchema.safeParse(claims)
  if (!parsed.success) {
    throw new TokenError('token_claims', z.prettifyError(parsed.error))
  }
  const { sub, ...rest } = parsed.data
  const jwt = new SignJWT(rest).setProtectedHeader({ alg: ALG }).setSubject(sub).setIssuedAt()
  if (expiresInS !== undefined) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + expiresInS)
  return jwt.sign(await key(secret))
}

/** Verifies a device token: its claims, and its expiry (epoch s) when it has one. */
async function verifyDevice(
  secret: string,
  token: string,
): Promise<{ claims: z.output<typeof ClaimsSchema>; exp: number | undefined }> {
  let payload: JWTPayload
  try {
    ;({ payload } = await jwtVerify(token, await key(secret), { algorithms: [ALG] }))
  } catch (err) {
    if (err instanceof errors.JWTExpired) throw new TokenError('token_expired', 'token expired')
    throw new TokenError('token_invalid', 'token does not verify')
  }
  const claims = ClaimsSchema.safeParse(payload)
  if (!claims.success) throw new TokenError('token_claims', 'token claims are not valid')
  return { claims: claims.data, exp: payload.exp }
}

/** Verifies a device token and returns the identity it grants. */
export async function verifyDeviceToken(secret: string, token: string): Promise<DeviceIdentity> {
  const { sub, ...rest } = (await verifyDevice(secret, token)).claims
  return { ...rest, id: sub }
}

/**
 * Verifies a device token and returns its Principal: a drone, station or viewer has its
 * one fleet, a service its fleet when the token names one and every fleet otherwise.
 */
export async function devicePrincipal(secret: string, token: string): Promise<Principal> {
  const { claims, exp } = await verifyDevice(secret, token)
  const fleets = claims.fleet === undefined ? '*' : [claims.fleet]
  return {
    sub: claims.sub,
    role: claims.role,
    fleets,
    ...(exp === undefined ? {} : { exp }),
    kind: 'device',
  }
}
