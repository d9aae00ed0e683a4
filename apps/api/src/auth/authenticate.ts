import { verifyDeviceToken } from '@skyline/broker/auth'
import type { Principal } from './principal.ts'

/**
 * Turns a bearer token into who presents it, or rejects (any error: the token does not
 * verify). The one seam between the api and token formats: packages/auth's
 * authenticator (OIDC beside device tokens) takes its place (issue 16, item 1).
 */
export type Authenticate = (token: string) => Promise<Principal>

/**
 * Skyline's HS256 device tokens (`npm run token`). A drone, station or viewer token has
 * its one fleet; a service token its fleet, or every fleet when minted without one (the
 * api's own and `npm start`'s). Device tokens carry no `admin` role: it comes with OIDC.
 */
export function deviceAuthenticator(secret: string): Authenticate {
  return async (token) => {
    const who = await verifyDeviceToken(secret, token)
    if (who.role === 'anonymous') throw new Error('anonymous is not a token')
    // `exp` is left out: verifyDeviceToken has checked it, and closing live connections
    // at expiry comes with packages/auth (issue 16, item 2).
    return {
      sub: who.id,
      role: who.role,
      fleets: who.fleet !== undefined ? [who.fleet] : '*',
      kind: 'device',
    }
  }
}
