// Authentication for every app: who a token names, as one Principal. Skyline's own
// device tokens (HS256, signed with the shared secret, which lives in DATA_DIR unless
// DEVICE_TOKEN_SECRET is set) and, with an OIDC issuer, its access tokens. Apps run,
// packages are imported: the api and the simulator check a token without the broker.
export { createAuthenticator } from './authenticator.ts'
export type { Authenticator, AuthenticatorOptions } from './authenticator.ts'
export { claimAt, fleetsFrom, oidcPrincipal, roleFrom } from './claims.ts'
export {
  DEVICE_ROLES,
  DEVICE_TOKEN_ALG,
  TokenError,
  devicePrincipal,
  signDeviceToken,
  verifyDeviceToken,
} from './device-tokens.ts'
export type { DeviceClaims, DeviceIdentity, DeviceRole } from './device-tokens.ts'
export { DEFAULT_CLOCK_TOLERANCE_S, OIDC_ALGORITHMS } from './oidc.ts'
export type { OidcOptions } from './oidc.ts'
export { ROLES, isRole } from './principal.ts'
export type { Principal, Role } from './principal.ts'
export { resolveTokenSecret } from './secret.ts'
export {
  OIDC_CLIENT_ENV,
  OIDC_ENV,
  oidcOptions,
  withOidcClientRules,
  withOidcRules,
} from './oidc-env.ts'
export {
  TokenRequestError,
  discoverTokenEndpoint,
  keepRenewed,
  renewalDelayMs,
} from './client-credentials.ts'
export type {
  IssuedToken,
  Renewal,
  TokenEndpoint,
  TokenEndpointOptions,
} from './client-credentials.ts'
