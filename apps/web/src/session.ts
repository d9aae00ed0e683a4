// Who the page is signed in as: a token (ARCHITECTURE.md "Who may call what"), sent on
// every REST request and as the live stream's first message. It is a credential, so it
// is kept for this tab only (sessionStorage), never stored empty, and can be forgotten.
// `npm start` opens the map with `#token=…`; the token then leaves the address bar, so
// it ends up in no bookmark, screenshot or browser history.

const TOKEN_KEY = 'skyline.token'

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

export function setToken(value: string): void {
  const t = value.trim()
  if (t !== '') sessionStorage.setItem(TOKEN_KEY, t)
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY)
}

/** Calls `listener` when the api refuses the token (a 401, or the live stream's 4401/4403). */
export function onRefused(listener: (message: string) => void): void {
  refused.push(listener)
}

export function refuse(message: string): void {
  for (const l of refused) l(message)
}

const refused: ((message: string) => void)[] = []
