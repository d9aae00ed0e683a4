import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signDeviceToken } from '@skyline/auth'
import { Fleet } from '@skyline/drone-sim'
import type { Database } from '../../api/src/db/client.ts'
import {
  SECRET,
  buildApi,
  freshPglite,
  get,
  startBroker,
  testFleet,
} from '../../api/test/helpers.ts'
import type { TestBroker } from '../../api/test/helpers.ts'
import { WEB_DIST } from './build-page.ts'
import { launchChromium, openPage } from './browser.ts'

// The map against the real stack: bundled broker, api on PGlite serving the built
// page, a time-scaled simulated fleet, and Debian's Chromium. Everything is read the
// way a person reads it: the page's text.

/** Screenshots for a person to look at (not committed). */
const OUTPUT = fileURLToPath(new URL('../test-results', import.meta.url))
/** A tile server that cannot be reached: the map must work without tiles. */
const NO_TILES = '127.0.0.1:9'
const DRONES = 6
const STATIONS = 3
const ETA = /\d\d:\d\d:\d\d \(\d+ min\)/

let broker: TestBroker
let database: Database
let api: FastifyInstance
let fleet: Fleet
let browser: Browser
let base: string
/** The map's address signed in as a viewer of fleet f1, as `npm start` prints it. */
let signedIn: string

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true })
  broker = await startBroker()
  database = await freshPglite()
  api = await buildApi(broker.url, database, {
    WEB_DIR: WEB_DIST,
    MAP_TILE_URL: `http://${NO_TILES}/{z}/{x}/{y}.png`,
  })
  await api.listen({ host: '127.0.0.1', port: 0 })
  const address = api.server.address()
  if (address === null || typeof address === 'string') throw new Error('api not listening')
  base = `http://127.0.0.1:${address.port}`
  const viewer = await signDeviceToken(SECRET, { role: 'viewer', sub: 'watcher', fleet: 'f1' })
  signedIn = `${base}/#token=${viewer}`
  fleet = await Fleet.start(
    testFleet(broker.url, {
      drones: DRONES,
      stations: STATIONS,
      radiusKm: 1.5,
      rateHz: 4,
      timeScale: 30,
      seed: 7,
    }),
  )
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await fleet?.stop()
  await api?.close()
  await database?.close()
  await broker?.close()
})

/** The fleet list as the page shows it: one entry per row, its cells' text. */
async function fleetRows(page: Page) {
  return page.$$eval('#fleet-list [data-drone]', (rows) =>
    rows.map((r) => ({
      key: (r as HTMLElement).dataset.drone!,
      id: r.querySelector('.drone-id')!.textContent,
      state: r.querySelector('.drone-state')!.textContent,
      battery: r.querySelector('.drone-battery')!.textContent,
      eta: r.querySelector('.drone-eta')!.textContent,
      where: (r as HTMLElement).title,
    })),
  )
}

async function showsFleet(page: Page): Promise<void> {
  await page.waitForFunction(
    (n) => document.querySelectorAll('#fleet-list [data-drone]').length === n,
    DRONES,
    { timeout: 15_000 },
  )
}

const row = (page: Page, droneId: string) => page.locator(`[data-drone="f1/${droneId}"]`)

describe('the live map', () => {
  it('loads without console errors and lists every simulated drone, its state and battery', async () => {
    const { page, errors } = await openPage(browser, signedIn, NO_TILES)
    await showsFleet(page)
    await expect.poll(() => page.textContent('#connection'), { timeout: 10_000 }).toBe('live')

    const rows = await fleetRows(page)
    expect(rows.map((r) => r.id).sort()).toEqual(fleet.drones.map((d) => d.id).sort())
    for (const r of rows) {
      expect(r.state).toMatch(/^(idle|charging)$/)
      expect(r.battery).toMatch(/^\d+%$/)
    }
    // Stations are on the map with their names, though no tile loaded.
    const names = await page.$$eval('.station-name', (els) => els.map((e) => e.textContent))
    expect(names).toHaveLength(STATIONS)
    expect(await page.textContent('#counts')).toContain(`${DRONES} drones`)
    // The drones are shown: those docked as a count on their station (issue 18), the
    // others drawn on the canvas.
    const docked = await page.$$eval('.station-docked', (els) =>
      els.reduce((n, e) => n + Number(e.textContent), 0),
    )
    const painted = await page.$eval('canvas.drone-layer', (c) => {
      const canvas = c as HTMLCanvasElement
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data
      let n = 0
      for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++
      return n
    })
    expect(docked).toBeLessThanOrEqual(DRONES)
    expect(painted).toBeGreaterThanOrEqual((DRONES - docked) * 20)
    await page.screenshot({ path: join(OUTPUT, 'live-map.png') })

    // Search and the state filter narrow the list; a click selects (and follows) a drone.
    const shown = () => page.locator('#fleet-list [data-drone]:not([hidden])')
    await page.fill('#fleet-search', 'drone-3')
    await expect.poll(() => shown().count()).toBe(1)
    await page.fill('#fleet-search', '')
    await page.selectOption('#fleet-state', 'idle')
    // Drones finish charging as the test runs: check what is shown, not a count.
    await expect
      .poll(async () => [...new Set(await shown().locator('.drone-state').allTextContents())])
      .toEqual(['idle'])
    await page.selectOption('#fleet-state', '')
    // Selecting a drone opens its details, and its track of the last 10 minutes comes
    // from the api with the page's token.
    const track = page.waitForResponse((r) => r.url().includes('/api/drones/drone-2/track'))
    await row(page, 'drone-2').click()
    expect(await row(page, 'drone-2').getAttribute('class')).toContain('selected')
    expect((await track).status()).toBe(200)
    expect(((await (await track).json()) as { points: unknown[] }).points.length).toBeGreaterThan(0)
    await expect.poll(() => page.isVisible('#drone-details')).toBe(true)
    expect(await page.textContent('#drone-details [data-field=id]')).toBe('drone-2')
    expect(await page.textContent('#drone-details [data-field=battery]')).toMatch(/^\d+%$/)
    expect(await page.locator('path.drone-track').count()).toBe(1)
    expect(errors).toEqual([])
    await page.close()
  })

  it('dispatches from the form, shows the ETA and the drone moving, then lists the completed delivery', async () => {
    const token = await signDeviceToken(SECRET, { role: 'service', sub: 'ops', fleet: 'f1' })
    const { page, errors } = await openPage(browser, `${base}/#token=${token}`, NO_TILES)
    await showsFleet(page)
    // The token moved from the address bar to the browser's storage.
    expect(new URL(page.url()).hash).toBe('')

    const [pickup, dropoff] = fleet.stations
    await page.click('[data-tab=dispatch]')
    await page.selectOption('#dispatch-fleet', 'f1')
    await page.selectOption('#dispatch-pickup', pickup!.id)
    await page.selectOption('#dispatch-dropoff', dropoff!.id)
    await page.click('#dispatch-form button[type=submit]')
    await expect
      .poll(() => page.textContent('#dispatch-result'), { timeout: 5_000 })
      .toMatch(/^delivery \w+ requested$/)

    await page.click('[data-tab=fleet]')
    const withEta = await page.waitForFunction(
      (pattern) => {
        const re = new RegExp(pattern)
        for (const r of document.querySelectorAll<HTMLElement>('#fleet-list [data-drone]')) {
          if (re.test(r.querySelector('.drone-eta')!.textContent ?? '')) return r.dataset.drone
        }
        return false
      },
      ETA.source,
      { timeout: 30_000 },
    )
    const key = (await withEta.jsonValue()) as string
    const droneId = key.split('/')[1]!
    const before = await row(page, droneId).getAttribute('title')
    await expect
      .poll(() => row(page, droneId).getAttribute('title'), { timeout: 10_000 })
      .not.toBe(before)
    await page.screenshot({ path: join(OUTPUT, 'delivery-in-flight.png') })

    await page.click('[data-tab=deliveries]')
    const done = page.locator(`#deliveries-list tr[data-status=completed]`, { hasText: droneId })
    await done.first().waitFor({ timeout: 45_000 })
    await expect.poll(() => row(page, droneId).locator('.drone-eta').textContent()).toBe('')

    // Its flown track replays on the map.
    await done.first().click()
    await page.locator('#replay').waitFor({ state: 'visible' })
    expect(Number(await page.getAttribute('#replay-slider', 'max'))).toBeGreaterThan(5)
    await page.fill('#replay-slider', '3')
    await page.dispatchEvent('#replay-slider', 'input')
    expect(await page.textContent('#replay-time')).toMatch(
      /^\d\d:\d\d:\d\d · \d+ m · [\d.]+ m\/s · 4\/\d+$/,
    )
    expect(await page.locator('path.replay-track').count()).toBe(1)
    expect(errors).toEqual([])
    await page.close()
  })

  it('marks a drone offline, with the time, when its connection drops without a DISCONNECT', async () => {
    const { page, errors } = await openPage(browser, signedIn, NO_TILES)
    await showsFleet(page)
    const victim = fleet.drones.at(-1)!
    // The socket is destroyed; the broker publishes the drone's will. It stays away for the test.
    expect(victim.connection?.dropFor(10 * 60_000)).toBe(true)
    await expect
      .poll(() => row(page, victim.id).locator('.drone-state').textContent(), { timeout: 15_000 })
      .toMatch(/^offline since \d\d:\d\d:\d\d$/)
    // Its label on the map says so too (an idle drone: no delivery whose ETA to grey).
    await expect
      .poll(() => page.locator(`[data-label-for="f1/${victim.id}"]`).textContent())
      .toMatch(/^offline since \d\d:\d\d:\d\d$/)
    expect(await page.textContent('#counts')).toContain('1 offline')
    expect(errors).toEqual([])
    await page.close()
  })

  it('reconnects the live stream by itself and catches up from a fresh snapshot', async () => {
    // The page's /api/live goes through a switch: while `down`, the stream is cut and
    // every reconnection is refused, as when the api restarts.
    const page = await browser.newPage({ viewport: { width: 1400, height: 860 } })
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    let down = false
    const pageSides: { close(): Promise<void> }[] = []
    await page.routeWebSocket(/\/api\/live$/, (ws) => {
      if (down) return void ws.close()
      pageSides.push(ws)
      ws.connectToServer()
    })
    await page.goto(signedIn)
    await showsFleet(page)
    await expect.poll(() => page.textContent('#connection'), { timeout: 10_000 }).toBe('live')

    down = true
    for (const ws of pageSides) await ws.close()
    await expect
      .poll(() => page.textContent('#connection'), { timeout: 5_000 })
      .toMatch(/^reconnecting/)
    // While the page is cut off, a drone drops: the api knows, the page cannot.
    const victim = fleet.drones.at(-2)!
    expect(victim.connection?.dropFor(10 * 60_000)).toBe(true)
    await expect
      .poll(
        async () => (await get(api, `/api/drones/${victim.id}`)).json<{ state: string }>().state,
        {
          timeout: 15_000,
        },
      )
      .toBe('offline')
    expect(await row(page, victim.id).locator('.drone-state').textContent()).not.toMatch(/^offline/)

    down = false
    await expect.poll(() => page.textContent('#connection'), { timeout: 15_000 }).toBe('live')
    await expect
      .poll(() => row(page, victim.id).locator('.drone-state').textContent(), { timeout: 5_000 })
      .toMatch(/^offline since /)
    expect(errors).toEqual([])
    await page.close()
  })

  it('pages through the deliveries and filters them by status', async () => {
    const token = await signDeviceToken(SECRET, { role: 'service', sub: 'ops', fleet: 'f1' })
    const [a, b] = fleet.stations
    for (let i = 0; i < 27; i++) {
      const res = await api.inject({
        method: 'POST',
        url: '/api/deliveries',
        headers: { authorization: `Bearer ${token}` },
        payload: { fleet: 'f1', pickupStationId: a!.id, dropoffStationId: b!.id, payloadKg: 1 },
      })
      expect(res.statusCode).toBe(201)
    }
    const { page, errors } = await openPage(browser, signedIn, NO_TILES)
    await showsFleet(page)
    await page.click('[data-tab=deliveries]')
    const rows = page.locator('#deliveries-list tr[data-delivery]')
    const ids = () =>
      rows.evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.delivery))
    await expect.poll(() => rows.count(), { timeout: 5_000 }).toBe(25)
    const first = await ids()
    await page.click('#deliveries-older')
    await expect.poll(async () => (await ids())[0]).not.toBe(first[0])
    const second = await ids()
    expect(second.length).toBeGreaterThan(0)
    expect(second.filter((id) => first.includes(id))).toEqual([])
    await page.click('#deliveries-newer')
    await expect.poll(ids).toEqual(first)

    // The filter asks REST for one status: every row shown has it.
    await page.selectOption('#deliveries-status', 'requested')
    await expect
      .poll(async () => [
        ...new Set(
          await rows.evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset.status)),
        ),
      ])
      .toEqual(['requested'])
    expect(errors).toEqual([])
    await page.close()
  })

  it('asks for a token without one, refuses a bad one, signs in and out, and shows only the fleets of the token', async () => {
    const { page, errors } = await openPage(browser, base, NO_TILES)
    await expect.poll(() => page.isVisible('#signin'), { timeout: 10_000 }).toBe(true)
    expect(await page.textContent('#signin')).toContain('npm start')
    expect(await page.locator('#fleet-list [data-drone]').count()).toBe(0)

    const signIn = async (token: string) => {
      await page.fill('#signin-token', token)
      await page.click('#signin-form button[type=submit]')
    }
    await signIn('not-a-token')
    await expect
      .poll(() => page.textContent('#signin-error'), { timeout: 10_000 })
      .toMatch(/refused the token/)

    // A viewer of another fleet: the page works, and shows nothing of f1.
    await signIn(await signDeviceToken(SECRET, { role: 'viewer', sub: 'v', fleet: 'other' }))
    await expect.poll(() => page.textContent('#connection'), { timeout: 10_000 }).toBe('live')
    expect(await page.isVisible('#signin')).toBe(false)
    expect(await page.textContent('#counts')).toMatch(/^0 drones/)

    await page.click('#signout')
    await expect.poll(() => page.isVisible('#signin'), { timeout: 10_000 }).toBe(true)
    await signIn(new URL(signedIn).hash.slice('#token='.length))
    await showsFleet(page)
    // The refused token's 401 is the only error the page saw.
    expect(errors.filter((e) => !/status of 401/.test(e))).toEqual([])
    await page.close()
  })

  it("runs under the api's content security policy, which blocks a script slipped into the page", async () => {
    const { page, errors } = await openPage(browser, signedIn, NO_TILES)
    await showsFleet(page)
    await expect.poll(() => page.textContent('#connection'), { timeout: 10_000 }).toBe('live')
    // The map asked for tiles (the tile server is allowed, though unreachable here).
    await page.waitForSelector('img.leaflet-tile', { state: 'attached', timeout: 10_000 })
    // Tile servers want a Referer: the tiles send the map's origin, the page nothing.
    expect(
      await page.$eval('img.leaflet-tile', (i) => (i as HTMLImageElement).referrerPolicy),
    ).toBe('strict-origin')
    await row(page, 'drone-1').click()
    expect(errors).toEqual([]) // openPage records every CSP violation as an error

    // What an injected script would do with the token in this tab: it does not run.
    await page.evaluate(() => {
      const s = document.createElement('script')
      s.textContent = 'window.stolen = sessionStorage.length'
      document.head.append(s)
    })
    await expect
      .poll(() => errors.filter((e) => e.startsWith('CSP: script-src-elem blocked inline')))
      .toHaveLength(1)
    expect(await page.evaluate(() => 'stolen' in window)).toBe(false)
    await page.close()
  })

  it('renders the OpenAPI documentation at /docs under the same policy', async () => {
    const { page, errors } = await openPage(browser, `${base}/docs`)
    await page.waitForSelector('.opblock-summary-path', { timeout: 15_000 })
    const paths = await page.$$eval('.opblock-summary-path', (els) =>
      els.map((e) => e.textContent?.replace(/\u200b/g, '')),
    )
    expect(paths).toContain('/api/deliveries/{id}/cancel')
    expect(errors).toEqual([])
    await page.close()
  })

  it('serves the page for revalidation and its hashed assets for good', async () => {
    const page = await api.inject('/')
    expect(page.statusCode).toBe(200)
    expect(page.headers['cache-control']).toBe('no-cache')
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(page.body)?.[1]
    expect(asset).toBeDefined()
    const js = await api.inject(asset!)
    expect(js.statusCode).toBe(200)
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    // The api's own 404 shape, not the static server's.
    const missing = await api.inject('/api/nope')
    expect(missing.statusCode).toBe(404)
    expect(missing.json()).toMatchObject({ error: { code: 'not_found' } })
  })
})
