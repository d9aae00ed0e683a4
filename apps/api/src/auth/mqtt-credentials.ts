import { decodeJwt } from 'jose'
import { discoverTokenEndpoint, signDeviceToken } from '@skyline/auth'
import type { IssuedToken } from '@skyline/auth'
import type { ApiConfig } from '../config.ts'

/** Who the api is on MQTT: a service token, and how to get the next one when it expires. */
export interface MqttCredentials {
  /** The token's `sub`: the broker takes it as the MQTT username. */
  username: string
  token: IssuedToken
  /** Undefined for a token that does not expire. */
  renew: (() => Promise<IssuedToken>) | undefined
}

/**
 * With OIDC_CLIENT_ID, a token from the issuer (client-credentials grant; its claims
 * must make it a `service` of the fleets the api serves), renewed before it expires.
 * Otherwise a service token of every fleet signed with the device-token secret, which
 * does not expire.
 * @throws TokenRequestError when the issuer refuses or cannot be reached.
 */
export async function mqttCredentials(
  config: ApiConfig,
  tokenSecret: string,
): Promise<MqttCredentials> {
  const { OIDC_ISSUER, OIDC_AUDIENCE, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET } = config
  if (OIDC_CLIENT_ID === undefined) {
    const id = config.API_MQTT_CLIENT_ID
    const accessToken = await signDeviceToken(tokenSecret, { role: 'service', sub: id })
    return { username: id, token: { accessToken, expiresAt: Infinity }, renew: undefined }
  }
  // The configuration's rules hold the issuer, audience and secret to be set with the id.
  const endpoint = await discoverTokenEndpoint({
    issuer: OIDC_ISSUER!,
    audience: OIDC_AUDIENCE!,
    scope: config.OIDC_SCOPE,
  })
  const renew = () => endpoint.request(OIDC_CLIENT_ID, OIDC_CLIENT_SECRET!)
  const token = await renew()
  const { sub } = decodeJwt(token.accessToken)
  return { username: sub ?? OIDC_CLIENT_ID, token, renew }
}
