// Who the page is signed in as: a token (ARCHITECTURE.md "Who may call what"), sent on
// every REST request and as the live stream's first message. It is a credential, so it
// is kept for this tab only (sessionStorage), never stored empty, and can be forgotten.
// `npm start` opens the map with `#token=…`; the token then leaves the address bar, so
// it ends up in no bookmark, screenshot or browser history.
//
// Signed in at an identity server (oidc.ts), the page also keeps what renews the access
// token and ends the session there: the refresh token, the ID token, and when the access
// token was issued and expires. They are as much credentials as the token, kept alike,
// and forgotten with it.

const TOKEN_KEY = 'skyline.token'
const ISSUED_KEY = 'skyline.issued'

/** Tokens from the identity server (its token endpoint's answer, as the page keeps it). */
export interface IssuedTokens {
  accessToken: string
  /** When the access token was received, epoch ms (the page's clock). */
  receivedAt: number
  /** Its lifetime from then, s (the answer's `expires_in`); absent when the issuer says none. */
  expiresInS?: number
  refreshToken?: string
  /** For the end of the session at the issuer (`id_token_hint`). */
  idToken?: string
}

/** Takes a `#token=…` from the address into the tab's storage, and out of the address bar. */
export function takeTokenFromUrl(): void {
  const fromUrl = new URLSearchParams(location.hash.slice(1)).get('token')
  if (fromUrl === null) return
  if (fromUrl.trim() !== '') setToken(fromUrl)
  history.replaceState(null, '', location.pathname + location.search)
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY)
}

/** A token from `#token=…` or pasted: whatever the issuer gave before goes. */
export function setToken(value: string): void {
  const t = value.trim()
  if (t === '') return
  sessionStorage.removeItem(ISSUED_KEY)
  sessionStorage.setItem(TOKEN_KEY, t)
}

/** Tokens the identity server issued (a sign-in or a renewal); tells onRenewed's listeners. */
export function setIssued(tokens: IssuedTokens): void {
  sessionStorage.setItem(TOKEN_KEY, tokens.accessToken)
  sessionStorage.setItem(ISSUED_KEY, JSON.stringify(tokens))
  for (const l of renewed) l()
}

/** What the identity server issued, when the page's token comes from one; otherwise null. */
export function issued(): IssuedTokens | null {
  const raw = sessionStorage.getItem(ISSUED_KEY)
  if (raw === null) return null
  try {
    const tokens = JSON.parse(raw) as IssuedTokens
    return tokens.accessToken === token() ? tokens : null
  } catch {
    return null
  }
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY)
  sessionStorage.removeItem(ISSUED_KEY)
}

/** Calls `listener` when the api refuses the token (a 401, or the live stream's 4401/4403). */
export function onRefused(listener: (message: string) => void): void {
  refused.push(listener)
}

export function refuse(message: string): void {
  for (const l of refused) l(message)
}

/** Calls `listener` when the identity server's tokens are stored (signed in, or renewed). */
export function onRenewed(listener: () => void): void {
  renewed.push(listener)
}

const refused: ((message: string) => void)[] = []
const renewed: (() => void)[] = []
