import { z } from 'zod'
import type { OidcOptions } from './oidc.ts'

const claimPath = z
  .string()
  .regex(
    /^[^.\s]+(\.[^.\s]+)*$/,
    'must be a claim name or a dotted path such as realm_access.roles',
  )

/**
 * The OIDC variables, the same for the broker and the api (docs/architecture.md
 * "Authentication"): spread into an app's environment schema, then `withOidcRules`.
 */
export const OIDC_ENV = {
  /**
   * OpenID Connect issuer whose access tokens are accepted beside device tokens
   * (discovery at {issuer}/.well-known/openid-configuration). Default none.
   */
  OIDC_ISSUER: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  /** The `aud` an OIDC access token must name; required with OIDC_ISSUER. */
  OIDC_AUDIENCE: z.string().min(1).optional(),
  /** Claim (name or dotted path) holding the role of an OIDC token. Default role. */
  OIDC_ROLE_CLAIM: claimPath.default('role'),
  /** Claim (name or dotted path) holding the fleets of an OIDC token. Default fleet. */
  OIDC_FLEET_CLAIM: claimPath.default('fleet'),
}

/**
 * A process that gets its own tokens from the issuer (client-credentials grant): the
 * api for its MQTT connection, the simulator for its devices.
 */
export const OIDC_CLIENT_ENV = {
  /** Its client id at the issuer. Default none: tokens are signed with the device-token secret. */
  OIDC_CLIENT_ID: z.string().min(1).max(255).optional(),
  /** Its client secret; required with OIDC_CLIENT_ID. */
  OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  /** Scopes to ask for, space-separated. Default none. */
  OIDC_SCOPE: z.string().min(1).optional(),
}

type OidcEnv = { OIDC_ISSUER?: string | undefined; OIDC_AUDIENCE?: string | undefined }

/** OIDC_ISSUER and OIDC_AUDIENCE go together: each is required with the other. */
export function withOidcRules<T extends z.ZodType<OidcEnv>>(schema: T) {
  return schema
    .refine((env) => env.OIDC_ISSUER === undefined || env.OIDC_AUDIENCE !== undefined, {
      message: 'required with OIDC_ISSUER',
      path: ['OIDC_AUDIENCE'],
    })
    .refine((env) => env.OIDC_AUDIENCE === undefined || env.OIDC_ISSUER !== undefined, {
      message: 'required with OIDC_AUDIENCE',
      path: ['OIDC_ISSUER'],
    })
}

type OidcClientEnv = OidcEnv & {
  OIDC_CLIENT_ID?: string | undefined
  OIDC_CLIENT_SECRET?: string | undefined
}

/** OIDC_CLIENT_ID needs its secret and an issuer to ask. */
export function withOidcClientRules<T extends z.ZodType<OidcClientEnv>>(schema: T) {
  return schema
    .refine((env) => env.OIDC_CLIENT_ID === undefined || env.OIDC_CLIENT_SECRET !== undefined, {
      message: 'required with OIDC_CLIENT_ID',
      path: ['OIDC_CLIENT_SECRET'],
    })
    .refine((env) => env.OIDC_CLIENT_ID === undefined || env.OIDC_ISSUER !== undefined, {
      message: 'required with OIDC_CLIENT_ID',
      path: ['OIDC_ISSUER'],
    })
}

/** The authenticator's OIDC options from a parsed configuration; undefined without an issuer. */
export function oidcOptions(config: {
  OIDC_ISSUER?: string | undefined
  OIDC_AUDIENCE?: string | undefined
  OIDC_ROLE_CLAIM: string
  OIDC_FLEET_CLAIM: string
}): OidcOptions | undefined {
  if (config.OIDC_ISSUER === undefined || config.OIDC_AUDIENCE === undefined) return undefined
  return {
    issuer: config.OIDC_ISSUER,
    audience: config.OIDC_AUDIENCE,
    roleClaim: config.OIDC_ROLE_CLAIM,
    fleetClaim: config.OIDC_FLEET_CLAIM,
  }
}
