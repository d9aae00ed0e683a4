import { createServer } from 'node:http'
import type { RequestListener } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import type { JWK } from 'jose'
import Provider, { errors as providerErrors } from 'oidc-provider'

// A real OpenID Provider for tests (panva's oidc-provider, certified), on an ephemeral
// loopback port: client-credentials grant, resource indicators, and JWT access tokens
// that carry the claims each client is configured with. Shared by the tests of every
// workspace that accepts OIDC tokens. With `options.logins`, also web clients
// (registerWebClient) and the authorization code flow with PKCE and refresh tokens that a
// person goes through in a browser, on oidc-provider's development login and consent pages.

/** One client of the test issuer: the claims and lifetime of the tokens it gets. */
export interface TestClient {
  id: string
  /** Claims added to its access tokens (e.g. role, fleet, realm_access). */
  claims: Record<string, unknown>
  /** Access token lifetime, s. Default 300. */
  ttlS?: number
}

export interface TestIssuer {
  /** The issuer identifier (`http://127.0.0.1:PORT`). */
  issuer: string
  /** An access token for `clientId` from the token endpoint (client-credentials grant). */
  token(clientId: string, resource?: string): Promise<string>
  /**
   * A token with the issuer's iss and aud (and kid, unless `kid` is given) but signed by
   * a key it never published.
   */
  forge(claims: Record<string, unknown>, kid?: string): Promise<string>
  /**
   * Registers a web client (RFC 7591 dynamic registration); needs `options.logins`. After
   * the start, as the map's address (its redirect URI) is the api's, whose configuration
   * names the issuer.
   */
  registerWebClient(client: TestWebClient): Promise<void>
  /** Requests to the JWKS endpoint so far. */
  readonly jwksFetches: number
  close(): Promise<void>
}

/**
 * A public client that signs people in from a browser (the map): authorization code with
 * PKCE (S256), refresh tokens, no secret (`token_endpoint_auth_method: none`). Whoever
 * signs in (any login and password on the development login page) gets `claims`.
 */
export interface TestWebClient extends TestClient {
  /** Where it may send the browser back after signing in and out (the map's address). */
  redirectUris: string[]
}

export interface TestIssuerOptions {
  /** Login and consent pages, and registerWebClient. Default false. */
  logins?: boolean
}

export const TEST_AUDIENCE = 'urn:skyline:test'
/** Another resource the issuer serves: its tokens are for someone else. */
export const OTHER_AUDIENCE = 'urn:other:test'
/** The secret of every client of the test issuer. */
export const TEST_CLIENT_SECRET = 'test-client-secret-that-is-long-enough-for-hmac'
const KID = 'test-es256'

/** Starts an issuer whose clients are `clients`; ES256 keys of its own. */
export async function startTestIssuer(
  clients: TestClient[],
  options: TestIssuerOptions = {},
): Promise<TestIssuer> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk: JWK = { ...(await exportJWK(privateKey)), kid: KID, alg: 'ES256', use: 'sig' }
  const byId = new Map(clients.map((c) => [c.id, c]))
  const logins = options.logins ?? false
  /** The id registerWebClient asks for: registration assigns it. */
  let registering = ''

  // The issuer URL holds the port, so the server listens before the provider exists.
  const app: { handle?: RequestListener } = {}
  let jwksFetches = 0
  const server = createServer((req, res) => {
    if (req.url?.startsWith('/jwks')) jwksFetches++
    app.handle!(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const provider = new Provider(issuer, {
    clients: clients.map((c) => ({
      client_id: c.id,
      client_secret: TEST_CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256', // the only key it has
    })),
    jwks: { keys: [jwk] },
    features: {
      devInteractions: { enabled: logins },
      registration: { enabled: logins, idFactory: () => registering },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => TEST_AUDIENCE,
        getResourceServerInfo: (_ctx, resource, client) => {
          if (resource !== TEST_AUDIENCE && resource !== OTHER_AUDIENCE) {
            throw new providerErrors.InvalidTarget()
          }
          return {
            scope: 'mqtt',
            accessTokenFormat: 'jwt',
            accessTokenTTL: byId.get(client.clientId)?.ttlS ?? 300,
            jwt: { sign: { alg: 'ES256' } },
          }
        },
      },
    },
    extraTokenClaims: (_ctx, token) => byId.get((token as { clientId: string }).clientId)?.claims,
    // A web client's sign-in comes with a refresh token without `offline_access` (as
    // Keycloak's standard flow does): the map renews its access token with it.
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Signed cookies for the login pages' interaction and session.
    cookies: { keys: ['test-issuer-cookie-key-not-a-secret'] },
  })
  const callback = provider.callback()
  app.handle = (req, res) => void callback(req, res)

  return {
    issuer,
    async token(clientId, resource = TEST_AUDIENCE) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${clientId}:${TEST_CLIENT_SECRET}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'mqtt' }),
      })
      const body = (await res.json()) as { access_token?: string; error_description?: string }
      if (!res.ok || body.access_token === undefined) {
        throw new Error(`token endpoint: ${res.status} ${body.error_description}`)
      }
      return body.access_token
    },
    async registerWebClient(client) {
      registering = client.id
      const res = await fetch(`${issuer}/reg`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          redirect_uris: client.redirectUris,
          post_logout_redirect_uris: client.redirectUris,
          token_endpoint_auth_method: 'none',
          id_token_signed_response_alg: 'ES256',
        }),
      })
      if (!res.ok) throw new Error(`registration: ${res.status} ${await res.text()}`)
      byId.set(client.id, client)
    },
    async forge(claims, kid = KID) {
      const { privateKey: other } = await generateKeyPair('ES256')
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
        .setIssuer(issuer)
        .setAudience(TEST_AUDIENCE)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(other)
    },
    get jwksFetches() {
      return jwksFetches
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((err) => (err ? reject(err) : resolve()))
      }),
  }
}

/**
 * A broker's or an authenticator's OIDC options for `issuer`, with no grace past `exp`
 * (clockToleranceS 0): a connection still on an expired token is closed at its exp.
 */
export const strictOidc = (issuer: TestIssuer) => ({
  issuer: issuer.issuer,
  audience: TEST_AUDIENCE,
  roleClaim: 'role',
  fleetClaim: 'fleet',
  clockToleranceS: 0,
})
