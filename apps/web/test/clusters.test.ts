import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { servePage } from './build-page.ts'
import { launchChromium, openPage } from './browser.ts'
import { droneView, fleetOf } from './fleet-views.ts'

// Issue 18: at low zoom a fleet of thousands is drawn as groups with a count
// (supercluster), and a group is a button that zooms in to where it splits. The page is
// served as built and the test plays the live stream (as in big-fleet.test.ts).

/** Screenshots for a person to look at (not committed). */
const OUTPUT = fileURLToPath(new URL('../test-results', import.meta.url))
const DRONES = 3_000

/** Two crowds 300 km apart (around Paris and Lyon), each about 2 km across. */
const drone = (n: number) => {
  const [lat, lon] = n % 2 === 0 ? [48.85, 2.35] : [45.76, 4.84]
  return droneView({
    id: `drone-${n}`,
    fleetId: 'big',
    state: n % 3 === 0 ? 'en_route' : 'idle',
    position: { lat: lat + ((n * 7) % 100) / 5_000, lon: lon + ((n * 13) % 100) / 4_000, altM: 50 },
    speedMps: 10,
    headingDeg: n % 360,
  })
}

const fleet = fleetOf(Array.from({ length: DRONES }, (_, i) => drone(i + 1)))

let served: { base: string; close(): Promise<void> } | undefined
let browser: Browser

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true })
  served = await servePage(fleet)
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await served?.close()
})

/** The groups shown: their counts, exact. */
const counts = (page: Page) =>
  page.$$eval('.cluster-bubble', (els) => els.map((e) => Number((e as HTMLElement).dataset.count)))

describe(`a fleet of ${DRONES} drones at low zoom`, () => {
  it('is drawn as groups with a count, and a click on a group zooms in to where it splits', async () => {
    const { page, errors } = await openPage(browser, 'about:blank')
    await page.routeWebSocket(/\/api\/live$/, (ws) => {
      ws.send(JSON.stringify({ type: 'snapshot', ...fleet }))
    })
    await page.goto(`${served!.base}/#token=any`)
    await expect
      .poll(() => page.textContent('#counts'), { timeout: 10_000 })
      .toMatch(new RegExp(`^${DRONES} drones`))

    // Every drone is in a group (two crowds, far apart at this zoom), and no label is
    // drawn for drones that are not shown one by one.
    await expect.poll(async () => (await counts(page)).reduce((a, b) => a + b, 0)).toBe(DRONES)
    const groups = await counts(page)
    expect(groups.length).toBeGreaterThanOrEqual(2)
    expect(groups.length).toBeLessThan(20)
    expect(await page.locator('.cluster-bubble').first().getAttribute('aria-label')).toMatch(
      /^[\d,]+ drones: zoom in$/,
    )
    expect(await page.locator('[data-label-for]').count()).toBe(0)
    await page.locator('#map').screenshot({ path: join(OUTPUT, 'clusters.png') })

    // A click zooms in on its group: the scale changes, the group splits or opens.
    const scale = await page.textContent('.leaflet-control-scale-line')
    const biggest = groups.indexOf(Math.max(...groups))
    await page.locator('.cluster-bubble').nth(biggest).click()
    await expect.poll(() => page.textContent('.leaflet-control-scale-line')).not.toBe(scale)
    await expect
      .poll(async () => Math.max(0, ...(await counts(page))))
      .toBeLessThan(groups[biggest]!)

    // Close enough, every drone is drawn alone again, on the canvas.
    await expect
      .poll(
        async () => {
          await page.click('.leaflet-control-zoom-in')
          return page.locator('.cluster-bubble').count()
        },
        { timeout: 15_000 },
      )
      .toBe(0)
    const painted = await page.$eval('canvas.drone-layer', (c) => {
      const canvas = c as HTMLCanvasElement
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data
      let n = 0
      for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++
      return n
    })
    expect(painted).toBeGreaterThan(100 * 20)
    expect(errors).toEqual([])
    await page.close()
  })
})
