import type { FleetView } from '@skyline/schemas'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { servePage } from './build-page.ts'
import { launchChromium, openPage } from './browser.ts'
import { droneView, fleetOf } from './fleet-views.ts'

// Issue 16: ids are unique within a fleet only. A reader of two fleets saw their two
// `drone-1`s as two identical rows; the list shows a fleet column when the drones are of
// more than one fleet, and none with one. The api and its live stream are played by the
// test, as in big-fleet.test.ts.

const drone = (fleetId: string, id: string, n: number) =>
  droneView({ id, fleetId, position: { lat: 48.85 + n / 100, lon: 2.35 + n / 100, altM: 50 } })

const TWO = fleetOf([
  drone('north', 'drone-1', 1),
  drone('north', 'drone-2', 2),
  drone('south', 'drone-1', 3),
])
const ONE = fleetOf([drone('north', 'drone-1', 1), drone('north', 'drone-2', 2)])

let browser: Browser
const served: { base: string; close(): Promise<void> }[] = []

beforeAll(async () => {
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  for (const s of served) await s.close()
})

/** The page signed in, its api answering `fleet` and its live stream `frames`. */
async function open(fleet: FleetView, frames: unknown[] = [{ type: 'snapshot', ...fleet }]) {
  const s = await servePage(fleet)
  served.push(s)
  const { page, errors } = await openPage(browser, 'about:blank')
  await page.routeWebSocket(/\/api\/live$/, (ws) => {
    for (const f of frames) ws.send(JSON.stringify(f))
  })
  await page.goto(`${s.base}/#token=any`)
  await expect.poll(() => page.textContent('#counts'), { timeout: 10_000 }).toMatch(/^\d+ drones/)
  return { page, errors }
}

/** The list as the operator reads it: each row's visible cells. */
const rowsOf = (page: Page) =>
  page.$$eval('#fleet-list [data-drone]', (rows) =>
    rows.map((r) =>
      [...r.children]
        .filter((c) => (c as HTMLElement).offsetParent !== null)
        .map((c) => c.textContent)
        .slice(0, 2),
    ),
  )

const headOf = (page: Page) =>
  page.$$eval('#fleet-head span', (cells) =>
    cells
      .filter((c) => c instanceof HTMLElement && c.offsetParent !== null)
      .map((c) => c.textContent),
  )

describe('the fleet list of more than one fleet', () => {
  it('shows a fleet column, so two fleets’ drone-1s are two rows told apart', async () => {
    const { page, errors } = await open(TWO)
    await expect
      .poll(() => rowsOf(page))
      .toEqual([
        ['north', 'drone-1'],
        ['north', 'drone-2'],
        ['south', 'drone-1'],
      ])
    expect(await headOf(page)).toEqual(['fleet', 'drone', 'state', 'battery', 'speed', 'ETA'])
    expect(await page.getAttribute('#fleet-search', 'placeholder')).toBe('Search drone or fleet')

    // The search takes the fleet too.
    const keys = () =>
      page.$$eval('#fleet-list [data-drone]', (rows) =>
        rows.map((r) => (r as HTMLElement).dataset.drone),
      )
    await page.fill('#fleet-search', 'south')
    await expect.poll(keys).toEqual(['south/drone-1'])
    await page.fill('#fleet-search', 'north/drone-1')
    await expect.poll(keys).toEqual(['north/drone-1'])
    await page.fill('#fleet-search', 'drone-1')
    await expect.poll(keys).toEqual(['north/drone-1', 'south/drone-1'])

    // Selecting one drone-1 selects that one only (the page keys drones by fleet and id).
    await page.click('[data-drone="south/drone-1"]')
    await expect
      .poll(() =>
        page.$$eval('#fleet-list .selected', (rows) =>
          rows.map((r) => (r as HTMLElement).dataset.drone),
        ),
      )
      .toEqual(['south/drone-1'])
    expect(errors).toEqual([])
    await page.close()
  })

  it('keeps the list of one fleet as it was: no fleet column, the fleet not searched', async () => {
    const { page, errors } = await open(ONE)
    await expect
      .poll(() => rowsOf(page))
      .toEqual([
        ['drone-1', 'idle'],
        ['drone-2', 'idle'],
      ])
    expect(await headOf(page)).toEqual(['drone', 'state', 'battery', 'speed', 'ETA'])
    expect(await page.getAttribute('#fleet-search', 'placeholder')).toBe('Search drone id')
    // The fleet is no part of the text, nor of the search: `north` finds no drone.
    expect(await page.textContent('#fleet-list')).not.toContain('north')
    await page.fill('#fleet-search', 'north')
    await expect.poll(() => page.locator('#fleet-list [data-drone]').count()).toBe(0)
    expect(errors).toEqual([])
    await page.close()
  })

  it('shows the column once a drone of a second fleet comes in a frame', async () => {
    const { page, errors } = await open(ONE, [
      { type: 'snapshot', ...ONE },
      {
        type: 'changes',
        at: new Date().toISOString(),
        drones: [drone('south', 'drone-1', 3)],
        stations: [],
        deliveries: [],
      },
    ])
    await expect
      .poll(() => rowsOf(page))
      .toEqual([
        ['north', 'drone-1'],
        ['north', 'drone-2'],
        ['south', 'drone-1'],
      ])
    expect(await headOf(page)).toContain('fleet')
    expect(errors).toEqual([])
    await page.close()
  })
})
