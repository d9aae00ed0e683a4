import type { FastifyInstance } from 'fastify'
import type { Browser, Page, WebSocket } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Fleet } from '@skyline/drone-sim'
import type { Database } from '../../api/src/db/client.ts'
import { buildApi, freshPglite, startBroker, testFleet } from '../../api/test/helpers.ts'
import type { TestBroker } from '../../api/test/helpers.ts'
import { TEST_AUDIENCE, startTestIssuer } from '../../../packages/auth/test/issuer.ts'
import type { TestIssuer } from '../../../packages/auth/test/issuer.ts'
import { WEB_DIST } from './build-page.ts'
import { launchChromium, openPage } from './browser.ts'

// Issue 16, item 4: the map signs in at an identity server, a real one (oidc-provider, its
// development login and consent pages), with the authorization code flow and PKCE; renews
// its access token before it expires without leaving the page, the live stream carrying
// on; and signs out there too. Against the real stack: broker, api, simulated fleet.

const CLIENT_ID = 'skyline-map'
/** Short-lived access tokens, so that the test sees them renewed, s. */
const TTL_S = 12
const DRONES = 3

let issuer: TestIssuer
let broker: TestBroker
let database: Database
let api: FastifyInstance
let fleet: Fleet
let browser: Browser
let base: string

beforeAll(async () => {
  issuer = await startTestIssuer([], { logins: true })
  broker = await startBroker()
  database = await freshPglite()
  api = await buildApi(broker.url, database, {
    WEB_DIR: WEB_DIST,
    MAP_TILE_URL: 'none',
    OIDC_ISSUER: issuer.issuer,
    OIDC_AUDIENCE: TEST_AUDIENCE,
    OIDC_WEB_CLIENT_ID: CLIENT_ID,
  })
  await api.listen({ host: '127.0.0.1', port: 0 })
  const address = api.server.address()
  if (address === null || typeof address === 'string') throw new Error('api not listening')
  base = `http://127.0.0.1:${address.port}`
  // The map's address is known now: the issuer may send people back there.
  await issuer.registerWebClient({
    id: CLIENT_ID,
    redirectUris: [`${base}/`],
    claims: { role: 'viewer', fleet: 'f1' },
    ttlS: TTL_S,
  })
  fleet = await Fleet.start(
    testFleet(broker.url, { drones: DRONES, stations: 2, radiusKm: 1, rateHz: 4, seed: 11 }),
  )
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await fleet?.stop()
  await api?.close()
  await database?.close()
  await broker?.close()
  if (!issuerClosed) await issuer?.close()
})

/** Goes through the issuer's login and consent pages as `login`. */
async function logIn(page: Page, login: string): Promise<void> {
  await page.locator('input[name=login]').waitFor({ timeout: 10_000 })
  expect(new URL(page.url()).origin).toBe(issuer.issuer)
  await page.fill('input[name=login]', login)
  await page.fill('input[name=password]', 'any password will do')
  await page.click('button[type=submit]')
  await page.locator('button', { hasText: 'Continue' }).click({ timeout: 10_000 })
}

async function showsFleet(page: Page): Promise<void> {
  await page.waitForFunction(
    (n) => document.querySelectorAll('#fleet-list [data-drone]').length === n,
    DRONES,
    { timeout: 15_000 },
  )
  await expect.poll(() => page.textContent('#connection'), { timeout: 10_000 }).toBe('live')
}

const storedToken = (page: Page) => page.evaluate(() => sessionStorage.getItem('skyline.token'))

/** A JWT's `exp`, epoch ms. */
function expiryOf(jwt: string): number {
  const payload = JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as {
    exp: number
  }
  return payload.exp * 1000
}

/** `skyline_live_dropped_total{reason="token_expired"}`: streams the api closed at exp. */
async function closedAtExpiry(): Promise<number> {
  const text = (await api.inject('/metrics')).body
  const m = /skyline_live_dropped_total\{reason="token_expired"\} (\d+)/.exec(text)
  return m === null ? 0 : Number(m[1])
}

/** The issuer's own pages load a font from the Internet, out of reach here... */
const FONTS = 'fonts.googleapis.com'
/** ... and have no favicon: the page's errors but those. */
const mapErrors = (errors: string[]) =>
  errors.filter((e) => !e.endsWith(`(${issuer.issuer}/favicon.ico)`))
/** The last test stops the issuer. */
let issuerClosed = false

describe('signing the map in at an identity server', () => {
  it('signs in, renews the token across its expiry with the live stream flowing, and signs out', async () => {
    const { page, errors } = await openPage(browser, base, FONTS)
    const sockets: { socket: WebSocket; openedAt: number; lastFrameAt: number }[] = []
    page.on('websocket', (socket) => {
      const entry = { socket, openedAt: Date.now(), lastFrameAt: 0 }
      socket.on('framereceived', () => (entry.lastFrameAt = Date.now()))
      sockets.push(entry)
    })

    // The sign-in screen offers the issuer, and still takes a pasted token.
    const button = page.locator('#signin-oidc-button')
    await expect
      .poll(() => button.textContent(), { timeout: 10_000 })
      .toBe(`Sign in with ${new URL(issuer.issuer).host}`)
    expect(await page.isVisible('#signin-token')).toBe(true)
    await button.click()
    await logIn(page, 'alice')

    // Back on the map, signed in: the code and state left the address bar.
    await showsFleet(page)
    expect(new URL(page.url()).search).toBe('')
    expect(await page.isVisible('#signin')).toBe(false)
    expect(await page.evaluate(() => Object.keys(sessionStorage).sort())).toEqual([
      'skyline.issued',
      'skyline.token',
    ])
    const first = (await storedToken(page))!
    const firstExpiry = expiryOf(first)
    expect(firstExpiry - Date.now()).toBeLessThanOrEqual(TTL_S * 1000)
    // Nothing below reloads the page: this stays.
    await page.evaluate(() => Object.assign(window, { stillHere: true }))

    // Renewed before it expires, without leaving the page...
    await expect
      .poll(() => storedToken(page), { timeout: TTL_S * 1000, interval: 250 })
      .not.toBe(first)
    expect(Date.now()).toBeLessThan(firstExpiry)
    const second = (await storedToken(page))!
    expect(expiryOf(second)).toBeGreaterThan(firstExpiry)

    // ... and the live stream signed in again with the new token: past the first token's
    // exp, frames still come, on a connection opened after the renewal, the first closed
    // by the page (the api would close it only 30 s past exp, its clock skew).
    await expect
      .poll(() => sockets.some((s) => s.lastFrameAt > firstExpiry + 1_000), {
        timeout: TTL_S * 1000,
        interval: 250,
      })
      .toBe(true)
    expect(sockets.length).toBeGreaterThan(1)
    expect(sockets[0]!.socket.isClosed()).toBe(true)
    expect(sockets.at(-1)!.socket.isClosed()).toBe(false)
    expect(await page.textContent('#connection')).toBe('live')
    expect(await page.isVisible('#signin')).toBe(false)
    expect(await page.evaluate(() => 'stillHere' in window)).toBe(true)
    expect(await closedAtExpiry()).toBe(0)
    // REST with the renewed token, past the first one's expiry.
    const [deliveries] = await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).pathname === '/api/deliveries'),
      page.click('[data-tab=deliveries]'),
    ])
    expect(deliveries.status()).toBe(200)

    // Renewed again: the issuer rotates a public client's refresh token at each use, and
    // takes the spent one for a theft (it would end the grant).
    await expect
      .poll(() => storedToken(page), { timeout: TTL_S * 1000, interval: 250 })
      .not.toBe(second)
    await expect.poll(() => sockets.length, { timeout: 5_000 }).toBeGreaterThan(2)
    await expect.poll(() => page.textContent('#connection')).toBe('live')
    expect(await page.isVisible('#signin')).toBe(false)

    // Signing out ends the session at the issuer, and comes back to the sign-in screen.
    await page.click('#signout')
    await page.locator('button', { hasText: 'Yes, sign me out' }).click({ timeout: 10_000 })
    await page.waitForURL(`${base}/`, { timeout: 10_000 })
    await expect.poll(() => page.isVisible('#signin'), { timeout: 10_000 }).toBe(true)
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0)
    // The issuer forgot alice: signing in asks for a login again.
    await page.click('#signin-oidc-button')
    await page.locator('input[name=login]').waitFor({ timeout: 10_000 })

    expect(mapErrors(errors)).toEqual([]) // content security policy violations among them
    await page.close()
  }, 90_000)

  it('says why when the sign-in is cancelled at the issuer', async () => {
    const { page, errors } = await openPage(browser, base, FONTS)
    await page.click('#signin-oidc-button')
    await page.locator('input[name=login]').waitFor({ timeout: 10_000 })
    await page.click('text=[ Cancel ]')
    await page.waitForURL(`${base}/`, { timeout: 10_000 })
    await expect
      .poll(() => page.textContent('#signin-error'), { timeout: 10_000 })
      .toMatch(/^Signing in at 127\.0\.0\.1:\d+ failed: access_denied/)
    expect(new URL(page.url()).search).toBe('')
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0)
    expect(mapErrors(errors)).toEqual([]) // content security policy violations among them
    await page.close()
  })

  it('shows the sign-in screen with the reason when the token cannot be renewed', async () => {
    const { page, errors } = await openPage(browser, base, FONTS)
    await page.click('#signin-oidc-button')
    await logIn(page, 'bob')
    await showsFleet(page)
    // The issuer goes away: the renewal that falls due fails.
    await issuer.close()
    issuerClosed = true
    await expect
      .poll(() => page.textContent('#signin-error'), { timeout: TTL_S * 1000 })
      .toMatch(/^Your session could not be renewed: the issuer cannot be reached/)
    expect(await page.isVisible('#signin')).toBe(true)
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0)
    // The failed fetches are the page's only errors: no CSP violation.
    expect(mapErrors(errors).filter((e) => !/ERR_CONNECTION_REFUSED/.test(e))).toEqual([])
    await page.close()
  })
})
