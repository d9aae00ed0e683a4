import { getAuthConfig } from './api.ts'
import { OidcSignIn } from './oidc.ts'
import { Renewal, renewalDue } from './renewal.ts'
import { forgetToken, issued, onRefused, setToken, takeTokenFromUrl, token } from './session.ts'

// The sign-in screen, and signing in and out: a token from `#token=…` or pasted in the
// screen, or, when the api names an identity server (GET /api/auth/config), signing in
// there (oidc.ts) and coming back. Without a token, or once the api refuses it, the screen
// covers the map. Signing in or out reloads the page: everything it holds was read with the
// token. A token from the identity server is renewed before it expires without leaving the
// page (renewal.ts; session.ts tells who uses the token, `onRenewed`).

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T

export class SignIn {
  private oidc: OidcSignIn | undefined
  private refused = false
  private readonly renewal = new Renewal({
    renew: () =>
      this.oidc === undefined ? Promise.reject(new Error('no issuer')) : this.oidc.renew(),
    onFailed: (message) => this.ask(`Your session could not be renewed: ${message}`),
  })

  /** `onSignedOut`: the page lost its token (refused, or the screen shown): stop using it. */
  constructor(private readonly onSignedOut: () => void) {
    $('signin-form').addEventListener('submit', (e) => {
      e.preventDefault()
      setToken($<HTMLTextAreaElement>('signin-token').value)
      location.reload()
    })
    $('signin-oidc-button').addEventListener('click', () => {
      this.oidc?.signIn().catch((err: unknown) => {
        $('signin-error').textContent =
          `Cannot sign in at ${this.oidc?.label}: ${(err as Error).message}`
      })
    })
    $('signout').addEventListener('click', () => void this.signOut())
    onRefused((message) => void this.refuse(`The api refused the token: ${message}`))
  }

  /**
   * Takes the token from the address (`#token=…`, or the identity server's answer).
   * Resolves true when the page holds a token; false when the sign-in screen shows.
   */
  async start(): Promise<boolean> {
    takeTokenFromUrl()
    const auth = await getAuthConfig().catch(() => ({ oidc: null }))
    if (auth.oidc !== null) {
      const oidc = (this.oidc = new OidcSignIn(auth.oidc))
      $('signin-oidc-button').textContent = `Sign in with ${oidc.label}`
      $('signin-oidc').hidden = false
      if (oidc.isCallback()) {
        try {
          await oidc.complete()
        } catch (err) {
          this.ask(`Signing in at ${oidc.label} failed: ${(err as Error).message}`)
          return false
        }
      }
    }
    if (token() === null) {
      this.ask()
      return false
    }
    this.renewal.schedule()
    return true
  }

  /**
   * The api refused the token. One from the identity server that was due for renewal may
   * have expired while the tab slept (its timers held back): a renewal may save the
   * session. Otherwise (or a fresh token refused: renewing would not help), sign in again.
   */
  async refuse(message: string): Promise<void> {
    if (this.refused) return
    this.refused = true
    const t = issued()
    const due = t === null ? undefined : renewalDue(t)
    if (this.oidc !== undefined && due !== undefined && Date.now() >= due) {
      try {
        await this.renewal.now()
        this.refused = false
        return
      } catch (err) {
        message = `${message}; renewing it failed: ${(err as Error).message}`
      }
    }
    this.ask(message)
  }

  /** Forgets the token and shows the sign-in screen, with `message` (why) if any. */
  private ask(message = ''): void {
    forgetToken()
    this.onSignedOut()
    $('signin-error').textContent = message
    $('signin').hidden = false
    $('signout').hidden = true
    if (this.oidc === undefined) $<HTMLTextAreaElement>('signin-token').focus()
    else $('signin-oidc-button').focus()
  }

  /** Forgets the tokens; signed in at the identity server, ends the session there too. */
  private async signOut(): Promise<void> {
    const fromIssuer = issued()
    forgetToken()
    const end =
      fromIssuer === null || this.oidc === undefined
        ? undefined
        : await this.oidc.endSessionUrl(fromIssuer.idToken).catch(() => undefined)
    if (end === undefined) location.reload()
    else location.assign(end)
  }
}
