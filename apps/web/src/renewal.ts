import { issued } from './session.ts'
import type { IssuedTokens } from './session.ts'

// When the identity server's access token is renewed (oidc.ts does it): before it
// expires, so REST and the live stream never hold an expired one. The api closes the live
// stream at the token's exp (plus 30 s of skew for an OIDC token): the page signs the
// stream in again with the new token before that (live.ts `renew`).

/** Renewed this long before it expires: a fifth of its lifetime, at most 60 s. */
export function renewalDue(t: IssuedTokens): number | undefined {
  if (t.expiresInS === undefined || t.refreshToken === undefined) return undefined
  const lifetimeMs = t.expiresInS * 1000
  return t.receivedAt + lifetimeMs - Math.min(60_000, lifetimeMs / 5)
}

/** setTimeout's longest delay (2^31 − 1 ms, 24.8 days); a longer one fires at once. */
const MAX_DELAY_MS = 2 ** 31 - 1

export interface RenewalOptions {
  /** Gets and stores a new access token (OidcSignIn.renew); rejects with the reason. */
  renew: () => Promise<void>
  /** A renewal that was due failed: the page must sign in again. */
  onFailed: (message: string) => void
}

/**
 * Renews the stored tokens when due, one renewal at a time. A hidden tab's timers may fire
 * late (Chromium holds them for up to a minute): it checks again when the tab shows.
 */
export class Renewal {
  private timer: ReturnType<typeof setTimeout> | undefined
  private running: Promise<void> | undefined

  constructor(private readonly opts: RenewalOptions) {
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState !== 'visible') return
      const t = issued()
      const due = t === null ? undefined : renewalDue(t)
      if (due !== undefined && Date.now() >= due) this.due()
    })
  }

  /** (Re)arms the timer for the stored tokens; nothing to do without a refresh token or expiry. */
  schedule(): void {
    clearTimeout(this.timer)
    const t = issued()
    const due = t === null ? undefined : renewalDue(t)
    if (due === undefined) return
    this.timer = setTimeout(() => this.due(), Math.min(MAX_DELAY_MS, Math.max(0, due - Date.now())))
  }

  /**
   * Renews now (joining a renewal under way) and re-arms for the new token. Rejects with
   * the reason, and stays disarmed: the same refresh token would fail again.
   */
  now(): Promise<void> {
    this.running ??= this.opts.renew().then(
      () => {
        this.running = undefined
        this.schedule()
      },
      (err: unknown) => {
        this.running = undefined
        clearTimeout(this.timer)
        throw err
      },
    )
    return this.running
  }

  private due(): void {
    this.now().catch((err: unknown) => this.opts.onFailed((err as Error).message))
  }
}
