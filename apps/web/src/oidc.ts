import * as oauth from 'oauth4webapi'
import type { AuthConfig } from '@skyline/schemas'
import { issued, setIssued } from './session.ts'
import type { IssuedTokens } from './session.ts'

// Signing in at the identity server the api names (GET /api/auth/config): OAuth 2.0's
// authorization code flow with PKCE (RFC 7636, S256) as a public client, with panva's
// oauth4webapi; the refresh token grant to renew the access token; RP-initiated logout.
// The tokens go to session.ts; this file holds the protocol, renewal.ts the timing.
//
// The access token must be a JWT for the api (its audience OIDC_AUDIENCE): the page asks
// for it with RFC 8707's `resource` when the audience is a URI, as the RFC requires
// (oidc-provider issues JWT access tokens only for a resource); an issuer that ignores
// `resource`, such as Keycloak, puts the audience in by a mapper of its own.

type OidcConfig = NonNullable<AuthConfig['oidc']>

/** The authorization request's PKCE verifier and state, kept for the round trip only. */
const PENDING_KEY = 'skyline.oidc.pending'

interface Pending {
  verifier: string
  state: string
}

export class OidcSignIn {
  /** How the sign-in screen names the issuer: its host. */
  readonly label: string
  private readonly issuer: URL
  private readonly client: oauth.Client
  private readonly http: { [oauth.allowInsecureRequests]?: boolean }
  private readonly resource: Record<string, string>
  private server: Promise<oauth.AuthorizationServer> | undefined

  constructor(private readonly config: OidcConfig) {
    this.issuer = new URL(config.issuer)
    this.label = this.issuer.host
    this.client = { client_id: config.clientId }
    // The api admits an http:// issuer (a development one); oauth4webapi only when told.
    this.http = this.issuer.protocol === 'http:' ? { [oauth.allowInsecureRequests]: true } : {}
    this.resource = URL.canParse(config.audience) ? { resource: config.audience } : {}
  }

  /** Where the issuer sends the browser back: the map's own address. */
  private get redirectUri(): string {
    return location.origin + location.pathname
  }

  /** The issuer's metadata (its discovery document), fetched once; again after a failure. */
  private metadata(): Promise<oauth.AuthorizationServer> {
    this.server ??= oauth
      .discoveryRequest(this.issuer, this.http)
      .then((res) => oauth.processDiscoveryResponse(this.issuer, res))
    this.server.catch(() => (this.server = undefined))
    return this.server
  }

  /** Leaves for the issuer's authorization endpoint; the browser comes back to complete(). */
  async signIn(): Promise<void> {
    const as = await this.metadata()
    if (as.authorization_endpoint === undefined)
      throw new Error('the issuer names no authorization endpoint')
    const pending: Pending = {
      verifier: oauth.generateRandomCodeVerifier(),
      state: oauth.generateRandomState(),
    }
    const url = new URL(as.authorization_endpoint)
    const params = {
      client_id: this.config.clientId,
      redirect_uri: this.redirectUri,
      response_type: 'code',
      scope: this.config.scope,
      code_challenge: await oauth.calculatePKCECodeChallenge(pending.verifier),
      code_challenge_method: 'S256',
      state: pending.state,
      ...this.resource,
    }
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
    sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending))
    location.assign(url)
  }

  /** The page's address is the issuer's answer to signIn(): a code or an error, and a state. */
  isCallback(): boolean {
    const params = new URLSearchParams(location.search)
    return params.has('state') && (params.has('code') || params.has('error'))
  }

  /**
   * Trades the issuer's code for tokens and stores them. The code and the state leave the
   * address bar first, whatever comes of it (a code is for one use, and no bookmark).
   * @throws an Error saying what went wrong, for the sign-in screen.
   */
  async complete(): Promise<void> {
    const answer = new URL(location.href)
    history.replaceState(null, '', location.pathname + location.hash)
    const raw = sessionStorage.getItem(PENDING_KEY)
    sessionStorage.removeItem(PENDING_KEY)
    const pending = raw === null ? null : (JSON.parse(raw) as Pending)
    if (pending === null) throw new Error('this tab started no sign-in: try again')
    try {
      const as = await this.metadata()
      const callback = oauth.validateAuthResponse(as, this.client, answer, pending.state)
      const res = await oauth.authorizationCodeGrantRequest(
        as,
        this.client,
        oauth.None(),
        callback,
        this.redirectUri,
        pending.verifier,
        { ...this.http, additionalParameters: this.resource },
      )
      store(await oauth.processAuthorizationCodeResponse(as, this.client, res))
    } catch (err) {
      throw new Error(describe(err), { cause: err })
    }
  }

  /**
   * A new access token for the stored refresh token, without leaving the page.
   * @throws an Error saying why (no refresh token, the issuer refused or is out of reach).
   */
  async renew(): Promise<void> {
    const current = issued()
    if (current?.refreshToken === undefined) throw new Error('the issuer gave no refresh token')
    try {
      const as = await this.metadata()
      const res = await oauth.refreshTokenGrantRequest(
        as,
        this.client,
        oauth.None(),
        current.refreshToken,
        { ...this.http, additionalParameters: this.resource },
      )
      store(await oauth.processRefreshTokenResponse(as, this.client, res), current)
    } catch (err) {
      throw new Error(describe(err), { cause: err })
    }
  }

  /**
   * The issuer's end-session endpoint (OpenID Connect RP-Initiated Logout 1.0), back to the
   * map afterwards; undefined when the issuer has none.
   */
  async endSessionUrl(idToken: string | undefined): Promise<URL | undefined> {
    const as = await this.metadata()
    if (as.end_session_endpoint === undefined) return undefined
    const url = new URL(as.end_session_endpoint)
    url.searchParams.set('client_id', this.config.clientId)
    url.searchParams.set('post_logout_redirect_uri', this.redirectUri)
    if (idToken !== undefined) url.searchParams.set('id_token_hint', idToken)
    return url
  }
}

/** Keeps a token endpoint's answer; a renewal without a new refresh or ID token keeps the old. */
function store(res: oauth.TokenEndpointResponse, previous?: IssuedTokens): void {
  const refreshToken = res.refresh_token ?? previous?.refreshToken
  const idToken = res.id_token ?? previous?.idToken
  setIssued({
    accessToken: res.access_token,
    receivedAt: Date.now(),
    ...(res.expires_in !== undefined && { expiresInS: res.expires_in }),
    ...(refreshToken !== undefined && { refreshToken }),
    ...(idToken !== undefined && { idToken }),
  })
}

/** An error of the flow in words: the issuer's own (`error: description`) when it gave one. */
function describe(err: unknown): string {
  if (err instanceof oauth.ResponseBodyError || err instanceof oauth.AuthorizationResponseError)
    return err.error_description === undefined
      ? err.error
      : `${err.error}: ${err.error_description}`
  if (err instanceof TypeError) return `the issuer cannot be reached (${err.message})`
  return err instanceof Error ? err.message : String(err)
}
