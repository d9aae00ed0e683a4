// Authentication for every app: Skyline's own device tokens (HS256, signed with the
// shared secret) and where that secret lives. Apps run, packages are imported: the api
// and the simulator check a token without installing the broker.
export { DEVICE_ROLES, TokenError, signDeviceToken, verifyDeviceToken } from './device-tokens.ts'
export type { DeviceClaims, DeviceIdentity, DeviceRole } from './device-tokens.ts'
export { resolveTokenSecret } from './secret.ts'
