// Device authentication for the other apps (simulator, api): signing and verifying
// tokens and finding the shared secret, without loading the broker itself.
export { DEVICE_ROLES, TokenError, signDeviceToken, verifyDeviceToken } from './tokens.ts'
export type { DeviceClaims, DeviceIdentity, DeviceRole } from './tokens.ts'
export { resolveTokenSecret } from './secret.ts'
