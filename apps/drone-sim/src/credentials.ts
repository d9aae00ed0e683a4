import { discoverTokenEndpoint, signDeviceToken } from '@skyline/auth'
import type { IssuedToken } from '@skyline/auth'

/** The device a token is for. */
export interface Device {
  id: string
  role: 'drone' | 'station'
  fleetId: string
}

/**
 * Where the simulated devices' tokens come from: signed here with the device-token
 * secret (they never expire), or from an OpenID Connect issuer, one client per device
 * (they expire and are renewed; see Connection.keepTokenFresh).
 */
export interface DeviceTokens {
  issue(device: Device): Promise<IssuedToken>
}

/** Skyline's own device tokens (HS256, no exp), as `npm start` uses. */
export function signedTokens(secret: string): DeviceTokens {
  return {
    issue: async ({ id, role, fleetId }) => ({
      accessToken: await signDeviceToken(secret, { role, sub: id, fleet: fleetId }),
      expiresAt: Number.POSITIVE_INFINITY,
    }),
  }
}

export interface IssuerTokensOptions {
  issuer: string
  audience: string
  scope?: string | undefined
  /**
   * Each device's client id: `{device}` is replaced with its id, `{fleet}` with its
   * fleet (e.g. `{fleet}.{device}`). The token's `sub` must be the device id.
   */
  clientIdTemplate: string
  /** The secret the simulated devices' clients share (real devices each hold their own). */
  clientSecret: string
}

/**
 * Tokens from the issuer's token endpoint, client-credentials grant, one client per
 * device: an OAuth client is who a token names, and a drone's token must name the drone.
 */
export async function issuerTokens(options: IssuerTokensOptions): Promise<DeviceTokens> {
  const endpoint = await discoverTokenEndpoint(options)
  return {
    issue: ({ id, fleetId }) =>
      endpoint.request(
        options.clientIdTemplate.replaceAll('{device}', id).replaceAll('{fleet}', fleetId),
        options.clientSecret,
      ),
  }
}
