import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DeliveryView, DroneChange, DroneView, FleetView, StationView } from '@skyline/schemas'
import type { Browser, Page, WebSocketRoute } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { servePage } from './build-page.ts'
import { launchChromium, openPage } from './browser.ts'

// Issue 15: the map shows a delivery's ETA only while its drone is heard; once its
// will comes or it goes stale, `signal lost hh:mm:ss` with the last ETA greyed, and a
// route that does not look live. The page is served as built and the live stream is
// played by the test (as in big-fleet.test.ts), so every frame and time is known: the
// page runs in UTC and the times are spelt out.

/** Screenshots for a person to look at (not committed). */
const OUTPUT = fileURLToPath(new URL('../test-results', import.meta.url))
const T = (hms: string) => `2026-11-25T${hms}.000Z`

const station = (id: string, lat: number, lon: number): StationView => ({
  id,
  fleetId: 'f1',
  name: id,
  lat,
  lon,
  capacity: 4,
  docked: [],
  online: true,
  statusAt: T('08:00:00'),
  onlineChangedAt: T('08:00:00'),
})

const flying: DroneView = {
  id: 'd1',
  fleetId: 'f1',
  online: true,
  state: 'en_route',
  stationId: null,
  model: null,
  firmware: null,
  position: { lat: 48.852, lon: 2.338, altM: 80 },
  speedMps: 14,
  headingDeg: 60,
  batteryPct: 71,
  deliveryId: 'x1',
  lastSeq: 100,
  positionAt: T('08:29:00'),
  lastSeenAt: T('08:29:00'),
  onlineChangedAt: T('08:00:00'),
  offlineReason: null,
}

const delivery: DeliveryView = {
  id: 'x1',
  fleetId: 'f1',
  status: 'en_route',
  source: 'api',
  pickupStationId: 's1',
  dropoffStationId: 's2',
  payloadKg: 1,
  droneId: 'd1',
  distanceM: 2500,
  requestedAt: T('08:20:00'),
  assignedAt: T('08:20:01'),
  pickedUpAt: T('08:24:00'),
  departedAt: T('08:25:00'),
  arrivedAt: null,
  completedAt: null,
  failedAt: null,
  cancelledAt: null,
  failureReason: null,
  etaAt: T('08:33:00'),
  etaErrorS: null,
}

const fleet: FleetView = {
  at: T('08:29:00'),
  drones: [flying],
  stations: [station('s1', 48.845, 2.325), station('s2', 48.862, 2.362)],
  deliveries: [delivery],
}

let served: { base: string; close(): Promise<void> } | undefined
let browser: Browser
let base: string

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true })
  served = await servePage(fleet)
  base = served.base
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await served?.close()
})

/** A `changes` frame for drone d1, as the api sends it at `hms`. */
const frame = (hms: string, change: Omit<DroneChange, 'id' | 'fleetId'>) =>
  JSON.stringify({
    type: 'changes',
    at: T(hms),
    drones: [{ id: 'd1', fleetId: 'f1', ...change }],
    stations: [],
    deliveries: [],
  })

/** What the page shows for d1: its label on the map and its ETA cell in the fleet list. */
async function shown(page: Page) {
  const label = page.locator('[data-label-for="f1/d1"]')
  const cell = page.locator('[data-drone="f1/d1"] .drone-eta')
  /** The colour of an element's greyed last ETA, null without one. */
  const greyed = (el: Element) => {
    const g = el.querySelector('.eta-greyed')
    return g === null ? null : getComputedStyle(g).color
  }
  // A missing element fails the poll's attempt at once, not after Playwright's 30 s.
  const timeout = 500
  return {
    map: await label.textContent({ timeout }),
    mapClass: await label.getAttribute('class', { timeout }),
    mapGreyed: await label.evaluate(greyed, undefined, { timeout }),
    list: await cell.textContent({ timeout }),
    listGreyed: await cell.evaluate(greyed, undefined, { timeout }),
  }
}

/**
 * Pixels of the drones' canvas by route colour: the live route (violet, like an en-route
 * drone's arrow) and the lost one (dark grey, unlike any arrow).
 */
function routePixels(page: Page) {
  return page.$eval('canvas.drone-layer', (c) => {
    const canvas = c as HTMLCanvasElement
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data
    const near = (i: number, r: number, g: number, b: number) =>
      data[i + 3]! > 60 &&
      Math.abs(data[i]! - r) <= 16 &&
      Math.abs(data[i + 1]! - g) <= 16 &&
      Math.abs(data[i + 2]! - b) <= 16
    let live = 0
    let lost = 0
    for (let i = 0; i < data.length; i += 4) {
      if (near(i, 95, 61, 196)) live++
      else if (near(i, 73, 80, 87)) lost++
    }
    return { live, lost }
  })
}

const GREY = 'rgb(134, 142, 150)'

describe('a delivery whose drone loses its signal', () => {
  it('shows signal lost with the last ETA greyed after the will or when stale, and the live ETA once heard again', async () => {
    const { page, errors } = await openPage(browser, 'about:blank', undefined, {
      timezoneId: 'UTC',
    })
    let live: WebSocketRoute | undefined
    await page.routeWebSocket(/\/api\/live$/, (ws) => {
      live = ws
      ws.send(JSON.stringify({ type: 'snapshot', ...fleet }))
    })
    // Signed in: the page asks for a token first (this stand-in api takes any).
    await page.goto(`${base}/#token=any`)
    const send = (hms: string, change: Omit<DroneChange, 'id' | 'fleetId'>) =>
      live!.send(frame(hms, change))

    // Flying and heard: the live ETA, minutes on the drone's clock, and a violet route.
    await expect
      .poll(() => shown(page), { timeout: 10_000 })
      .toEqual({
        map: 'ETA 08:33:00 (4 min)',
        mapClass: 'drone-label drone-label-eta',
        mapGreyed: null,
        list: '08:33:00 (4 min)',
        listGreyed: null,
      })
    const heard = await routePixels(page)
    expect(heard.live).toBeGreaterThan(100)
    expect(heard.lost).toBe(0)
    await page.screenshot({ path: join(OUTPUT, 'signal-heard.png') })

    // A point at 08:29:20, then the will at 08:29:50: the signal was lost at 08:29:20.
    send('08:29:20', { positionAt: T('08:29:20'), position: { lat: 48.853, lon: 2.34, altM: 80 } })
    send('08:29:50', {
      online: false,
      state: 'offline',
      onlineChangedAt: T('08:29:49'),
      offlineReason: 'connection_lost',
    })
    await expect
      .poll(() => shown(page), { timeout: 5_000 })
      .toEqual({
        map: 'signal lost 08:29:20 ETA 08:33:00',
        mapClass: 'drone-label drone-label-lost',
        mapGreyed: GREY,
        list: 'signal lost 08:29:20 08:33:00',
        listGreyed: GREY,
      })
    expect(await page.locator('[data-drone="f1/d1"] .drone-eta').getAttribute('class')).toContain(
      'signal-lost',
    )
    // The route is dotted grey now: no violet left (the arrow is grey too).
    const lost = await routePixels(page)
    expect(lost.live).toBe(0)
    expect(lost.lost).toBeGreaterThan(20)
    await page.screenshot({ path: join(OUTPUT, 'signal-lost.png') })

    // Back online: the live ETA returns.
    send('08:31:00', { online: true, state: 'en_route' })
    send('08:31:00', { positionAt: T('08:31:00'), state: 'en_route' })
    await expect
      .poll(() => shown(page), { timeout: 5_000 })
      .toMatchObject({
        map: 'ETA 08:33:00 (2 min)',
        mapClass: 'drone-label drone-label-eta',
        mapGreyed: null,
        list: '08:33:00 (2 min)',
      })
    await expect.poll(() => routePixels(page), { timeout: 5_000 }).toMatchObject({ lost: 0 })
    expect((await routePixels(page)).live).toBeGreaterThan(100)

    // Silent past STALE_AFTER_S: the stale sweep's frame says so; lost since 08:31:00.
    send('08:31:40', { state: 'stale' })
    await expect
      .poll(() => shown(page), { timeout: 5_000 })
      .toEqual({
        map: 'signal lost 08:31:00 ETA 08:33:00',
        mapClass: 'drone-label drone-label-lost',
        mapGreyed: GREY,
        list: 'signal lost 08:31:00 08:33:00',
        listGreyed: GREY,
      })
    expect((await routePixels(page)).live).toBe(0)

    // Its next point clears it.
    send('08:32:00', { positionAt: T('08:32:00'), state: 'en_route' })
    await expect
      .poll(() => shown(page), { timeout: 5_000 })
      .toMatchObject({
        map: 'ETA 08:33:00 (1 min)',
        list: '08:33:00 (1 min)',
      })
    expect(errors).toEqual([])
    await page.close()
  })
})
