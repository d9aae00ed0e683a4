import * as oauth from 'oauth4webapi'

// Tokens a process gets for itself from an OpenID Connect issuer, with the OAuth 2.0
// client-credentials grant (RFC 6749 §4.4), through panva's oauth4webapi (certified,
// maintained, no dependencies): discovery, client authentication and the checks of the
// token response are its. What is ours: asking for the resource Skyline's tokens are
// for, and renewing a token before it expires.

/** An access token and when it expires (epoch ms). */
export interface IssuedToken {
  accessToken: string
  expiresAt: number
}

export interface TokenEndpointOptions {
  /** The issuer identifier; its discovery document names the token endpoint. */
  issuer: string
  /**
   * The audience the token must name (OIDC_AUDIENCE): sent as `resource` (RFC 8707,
   * e.g. oidc-provider) when it is an absolute URI, and as `audience` (Auth0's
   * parameter; servers that know neither ignore them, Keycloak maps it by client).
   */
  audience: string
  /** Scopes to ask for, space-separated; default none. */
  scope?: string | undefined
  /** Each request to the issuer gives up after this long, ms. Default 10,000. */
  timeoutMs?: number
}

/** The failure of a token request, with the issuer's words when it gave some. */
export class TokenRequestError extends Error {
  readonly code = 'token_request_failed'
}

/** An issuer's token endpoint, found once, from which any number of clients get tokens. */
export interface TokenEndpoint {
  /** A fresh token for `clientId` (client_secret_basic). @throws TokenRequestError */
  request(clientId: string, clientSecret: string): Promise<IssuedToken>
}

/**
 * Finds the issuer's token endpoint (discovery). An http issuer is the operator's
 * choice (a compose network, a test), as it is for the token checks.
 * @throws TokenRequestError when the issuer cannot be reached or its metadata is wrong.
 */
export async function discoverTokenEndpoint(options: TokenEndpointOptions): Promise<TokenEndpoint> {
  const issuer = new URL(options.issuer)
  const timeoutMs = options.timeoutMs ?? 10_000
  const http = {
    [oauth.allowInsecureRequests]: issuer.protocol === 'http:',
    signal: () => AbortSignal.timeout(timeoutMs),
  }
  const as = await describe(`discovery at ${options.issuer}`, async () =>
    oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, http)))
  const parameters = new URLSearchParams({ audience: options.audience })
  if (URL.canParse(options.audience)) parameters.set('resource', options.audience)
  if (options.scope !== undefined) parameters.set('scope', options.scope)
  return {
    request: (clientId, clientSecret) =>
      describe(`token request of client ${clientId}`, async () => {
        const client: oauth.Client = { client_id: clientId }
        const response = await oauth.clientCredentialsGrantRequest(
          as,
          client,
          oauth.ClientSecretBasic(clientSecret),
          parameters,
          http,
        )
        const body = await oauth.processClientCredentialsResponse(as, client, response)
        if (body.expires_in === undefined) {
          throw new TokenRequestError(`token request of client ${clientId}: no expires_in`)
        }
        return { accessToken: body.access_token, expiresAt: Date.now() + body.expires_in * 1000 }
      }),
  }
}

/**
 * How long before its expiry a token is renewed: a fifth of its life, 10 s to 5 min, and
 * never more than half of it (a token of a few seconds would otherwise be renewed at once,
 * over and over).
 */
export function renewalDelayMs(token: IssuedToken, now = Date.now()): number {
  const left = token.expiresAt - now
  const margin = Math.min(300_000, Math.max(10_000, left / 5), left / 2)
  return Math.max(0, left - margin)
}

export interface Renewal {
  /** Stops renewing. */
  stop(): void
}

/**
 * Renews a token before it expires, for as long as it is not stopped: `onToken` gets
 * each new one. A failed request is tried again with backoff (1 s doubling to 30 s),
 * also past the old token's expiry: the process has no other way back in.
 */
export function keepRenewed(
  first: IssuedToken,
  request: () => Promise<IssuedToken>,
  onToken: (token: IssuedToken) => void,
  onError: (err: Error) => void = () => {},
): Renewal {
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  const schedule = (ms: number, retryMs: number) => {
    if (stopped) return
    timer = setTimeout(() => void renew(retryMs), Math.min(ms, 2 ** 31 - 1))
    timer.unref()
  }
  const renew = async (retryMs: number) => {
    try {
      const token = await request()
      if (stopped) return
      onToken(token)
      schedule(renewalDelayMs(token), 1_000)
    } catch (err) {
      onError(err instanceof Error ? err : new Error(String(err)))
      schedule(retryMs, Math.min(30_000, retryMs * 2))
    }
  }
  schedule(renewalDelayMs(first), 1_000)
  return {
    stop() {
      stopped = true
      clearTimeout(timer)
    },
  }
}

async function describe<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (err) {
    if (err instanceof TokenRequestError) throw err
    throw new TokenRequestError(`${what} failed: ${detailOf(err)}`, { cause: err })
  }
}

/** The issuer's own words (RFC 6749 §5.2 error and description) where it gave them. */
function detailOf(err: unknown): string {
  const words = (error: unknown, description: unknown) =>
    `${String(error)}${typeof description === 'string' ? `: ${description}` : ''}`
  if (err instanceof oauth.ResponseBodyError) return words(err.error, err.error_description)
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    const challenge = err.cause.find((c) => c.parameters.error !== undefined)
    return challenge === undefined
      ? `HTTP ${err.status}`
      : words(challenge.parameters.error, challenge.parameters.error_description)
  }
  return err instanceof Error ? err.message : String(err)
}
