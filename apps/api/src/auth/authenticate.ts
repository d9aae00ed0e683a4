import { createAuthenticator } from '@skyline/auth'
import type { OidcOptions, Principal } from '@skyline/auth'

/**
 * Turns a bearer token into who presents it, or rejects (a TokenError: the token does
 * not verify, or the issuer cannot be reached). The one seam between the api and token
 * formats.
 */
export type Authenticate = (token: string) => Promise<Principal>

/**
 * Skyline's HS256 device tokens (`npm run token`) and, with `oidc`, the issuer's access
 * tokens (packages/auth). A drone, station or viewer device token has its one fleet; a
 * service token its fleet, or every fleet when minted without one (the api's own and
 * `npm start`'s). `admin` comes with OIDC.
 */
export function tokenAuthenticator(secret: string, oidc?: OidcOptions): Authenticate {
  const authenticator = createAuthenticator({ secret, ...(oidc !== undefined && { oidc }) })
  return (token) => authenticator.verify(token)
}
