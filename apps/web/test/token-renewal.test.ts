import type { FleetView } from '@skyline/schemas'
import type { Browser, WebSocketRoute } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { renewalDue } from '../src/renewal.ts'
import { servePage } from './build-page.ts'
import { launchChromium, openPage } from './browser.ts'

// Issue 16, item 4: when a token from the identity server is renewed, and what the live
// stream does when the api closes it at its token's exp (4401). The issuer's side is
// oidc-sign-in.test.ts's; here the test plays the api's live stream.

describe('renewalDue', () => {
  const tokens = { accessToken: 'a', receivedAt: 1_000_000, refreshToken: 'r' }
  const at = (expiresInS: number) => renewalDue({ ...tokens, expiresInS })

  it('is a fifth of the lifetime before expiry, at most 60 s', () => {
    expect(at(12)).toBe(1_000_000 + 9_600)
    expect(at(300)).toBe(1_000_000 + 240_000)
    expect(at(3_600)).toBe(1_000_000 + 3_540_000)
  })

  it('is never without a refresh token or a lifetime', () => {
    expect(renewalDue({ accessToken: 'a', receivedAt: 0, expiresInS: 300 })).toBeUndefined()
    expect(renewalDue(tokens)).toBeUndefined()
  })
})

const EMPTY: FleetView = { at: new Date().toISOString(), drones: [], stations: [], deliveries: [] }

let browser: Browser
let served: { base: string; close(): Promise<void> }

beforeAll(async () => {
  browser = await launchChromium()
  served = await servePage(EMPTY)
})

afterAll(async () => {
  await browser?.close()
  await served?.close()
})

/** The page signed in with `first`; the live stream's connections and their auth tokens. */
async function open(first: string) {
  const { page, errors } = await openPage(browser, 'about:blank')
  const connections: { ws: WebSocketRoute; token: string }[] = []
  await page.routeWebSocket(/\/api\/live$/, (ws) => {
    ws.onMessage((message) => {
      const { token } = JSON.parse(String(message)) as { token: string }
      connections.push({ ws, token })
      ws.send(JSON.stringify({ type: 'snapshot', ...EMPTY }))
    })
  })
  await page.goto(`${served.base}/#token=${first}`)
  await expect.poll(() => page.textContent('#connection'), { timeout: 10_000 }).toBe('live')
  return { page, errors, connections }
}

describe('the live stream closed at its token’s expiry (4401)', () => {
  it('signs in again at once when the page holds a newer token', async () => {
    const { page, errors, connections } = await open('first-token')
    expect(connections.map((c) => c.token)).toEqual(['first-token'])
    // Renewed meanwhile (as oidc.ts stores it), and the stream closed before the page
    // moved it to the new token.
    await page.evaluate(() => sessionStorage.setItem('skyline.token', 'renewed-token'))
    await connections[0]!.ws.close({ code: 4401, reason: 'token expired: sign in again' })
    await expect
      .poll(() => connections.map((c) => c.token))
      .toEqual(['first-token', 'renewed-token'])
    await expect.poll(() => page.textContent('#connection')).toBe('live')
    expect(await page.isVisible('#signin')).toBe(false)
    expect(errors).toEqual([])
    await page.close()
  })

  it('asks to sign in again when the token it holds is the one that expired', async () => {
    const { page, errors, connections } = await open('only-token')
    await connections[0]!.ws.close({ code: 4401, reason: 'token expired: sign in again' })
    await expect
      .poll(() => page.textContent('#signin-error'), { timeout: 5_000 })
      .toBe('The live stream refused the token: token expired: sign in again')
    expect(connections).toHaveLength(1)
    expect(errors).toEqual([])
    await page.close()
  })
})
