import { decodeProtectedHeader } from 'jose'
import { DEVICE_TOKEN_ALG, TokenError, devicePrincipal } from './device-tokens.ts'
import { oidcVerifier } from './oidc.ts'
import type { OidcOptions } from './oidc.ts'
import type { Principal } from './principal.ts'

export interface AuthenticatorOptions {
  /** HS256 secret of Skyline's device tokens (DEVICE_TOKEN_SECRET). */
  secret: string
  /** An OIDC issuer whose access tokens are accepted too; absent, device tokens only. */
  oidc?: OidcOptions
}

export interface Authenticator {
  /**
   * Who the token names. @throws TokenError when it does not verify (its message
   * never quotes the token).
   */
  verify(token: string): Promise<Principal>
}

/**
 * One verifier for both kinds of token. The header's `alg` picks: HS256 is Skyline's
 * own device token (never accepted from the issuer, whose keys are asymmetric);
 * anything else goes to the OIDC issuer, which checks `iss` first.
 */
export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const oidc = options.oidc ? oidcVerifier(options.oidc) : undefined
  return {
    async verify(token) {
      let alg: string | undefined
      try {
        alg = decodeProtectedHeader(token).alg
      } catch {
        throw new TokenError('token_invalid', 'token is not a JWT')
      }
      if (alg === DEVICE_TOKEN_ALG) return devicePrincipal(options.secret, token)
      if (oidc === undefined) throw new TokenError('token_invalid', 'token does not verify')
      return oidc(token)
    },
  }
}
