import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ALL_ROWS_MAX, ROW_PX } from '../src/panel/fleet-list.ts'
import { servePage } from './build-page.ts'
import { launchChromium, openPage } from './browser.ts'
import { droneView, fleetOf } from './fleet-views.ts'

// The fleet list past ALL_ROWS_MAX drones: only the rows in view are in the page. The
// page is served as built; the api's fleet and live stream are played by the test, so
// a fleet of thousands needs no simulator.

const DRONES = 3_000

const drone = (n: number) =>
  droneView({
    id: `drone-${n}`,
    fleetId: 'big',
    state: n % 3 === 0 ? 'en_route' : 'idle',
    position: { lat: 48.8 + (n % 100) / 1000, lon: 2.3 + Math.floor(n / 100) / 1000, altM: 50 },
    speedMps: 10,
    headingDeg: n % 360,
  })

const fleet = fleetOf(Array.from({ length: DRONES }, (_, i) => drone(i + 1)))

let served: { base: string; close(): Promise<void> } | undefined
let browser: Browser
let base: string

beforeAll(async () => {
  served = await servePage(fleet)
  base = served.base
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await served?.close()
})

describe(`the fleet list past ${ALL_ROWS_MAX} drones`, () => {
  it('keeps only the rows in view in the page, yet scrolls and searches the whole fleet', async () => {
    expect(DRONES).toBeGreaterThan(ALL_ROWS_MAX)
    const { page, errors } = await openPage(browser, 'about:blank')
    // The live stream: a snapshot, then one drone changes.
    await page.routeWebSocket(/\/api\/live$/, (ws) => {
      ws.send(JSON.stringify({ type: 'snapshot', ...fleet }))
      ws.send(
        JSON.stringify({
          type: 'changes',
          at: new Date().toISOString(),
          drones: [{ id: 'drone-2', fleetId: 'big', batteryPct: 42 }],
          stations: [],
          deliveries: [],
        }),
      )
    })
    // Signed in: the page asks for a token first (this stand-in api takes any).
    await page.goto(`${base}/#token=any`)
    await expect
      .poll(() => page.textContent('#counts'), { timeout: 10_000 })
      .toMatch(new RegExp(`^${DRONES} drones`))
    const rows = page.locator('#fleet-list [data-drone]')
    const inPage = await rows.count()
    expect(inPage).toBeGreaterThan(10)
    expect(inPage).toBeLessThan(200)
    await expect
      .poll(() => page.locator('[data-drone="big/drone-2"] .drone-battery').textContent())
      .toBe('42%')

    // The scroll bar is the whole fleet's: at the bottom, the last drone.
    const height = await page.$eval('#fleet-list', (el) => el.scrollHeight)
    expect(height).toBeGreaterThanOrEqual(DRONES * ROW_PX)
    await page.$eval('#fleet-list', (el) => (el.scrollTop = el.scrollHeight))
    await expect.poll(() => rows.last().getAttribute('data-drone')).toBe(`big/drone-${DRONES}`)

    // Search reaches a drone far out of view; the state filter, a third of the fleet.
    await page.fill('#fleet-search', 'drone-2345')
    await expect.poll(() => rows.allTextContents()).toEqual([expect.stringContaining('drone-2345')])
    await page.fill('#fleet-search', '')
    await page.selectOption('#fleet-state', 'en_route')
    await expect
      .poll(async () => [...new Set(await rows.locator('.drone-state').allTextContents())])
      .toEqual(['en_route'])
    expect(await page.$eval('#fleet-list', (el) => el.scrollHeight)).toBe(1_000 * ROW_PX)
    expect(errors).toEqual([])
    await page.close()
  })
})
