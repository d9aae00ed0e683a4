import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import type { Browser, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { GeofenceView } from '@skyline/schemas'
import { Fleet } from '@skyline/drone-sim'
import type { Database } from '../../api/src/db/client.ts'
import {
  bearer,
  buildApi,
  freshPglite,
  square,
  startBroker,
  testFleet,
} from '../../api/test/helpers.ts'
import type { TestBroker } from '../../api/test/helpers.ts'
import { WEB_DIST } from './build-page.ts'
import { launchChromium, openPage } from './browser.ts'

// Issue 18: no-fly zones and areas on the map. The real stack (broker, api on PGlite
// serving the built page, a small simulated fleet on patrol, Debian's Chromium, no map
// tiles): zones made over REST are drawn under the drones and follow the api's changes
// live; an operator draws, edits and deletes zones with Leaflet-Geoman by mouse, and the
// api holds each step; a viewer sees the zones and no drawing tools.

/** Screenshots for a person to look at (not committed; docs/map-zones.png is one). */
const OUTPUT = fileURLToPath(new URL('../test-results', import.meta.url))
/** The test fleet flies around Paris (testFleet). */
const CENTRE = { lat: 48.8566, lon: 2.3522 }

let broker: TestBroker
let database: Database
let api: FastifyInstance
let fleet: Fleet
let browser: Browser
let base: string
let operator: string
let viewer: string

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true })
  broker = await startBroker()
  database = await freshPglite()
  api = await buildApi(broker.url, database, { WEB_DIR: WEB_DIST, MAP_TILE_URL: 'none' })
  await api.listen({ host: '127.0.0.1', port: 0 })
  const address = api.server.address()
  if (address === null || typeof address === 'string') throw new Error('api not listening')
  base = `http://127.0.0.1:${address.port}`
  operator = await bearer({ role: 'service', sub: 'ops', fleet: 'f1' })
  viewer = await bearer({ role: 'viewer', sub: 'watcher', fleet: 'f1' })
  fleet = await Fleet.start(
    testFleet(broker.url, {
      drones: 6,
      stations: 3,
      radiusKm: 1.5,
      rateHz: 2,
      timeScale: 10,
      patrol: true,
      seed: 11,
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

async function rest(
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  payload?: object,
): Promise<{ status: number; body: unknown }> {
  const res = await api.inject({
    method,
    url,
    headers: { authorization: operator },
    ...(payload !== undefined && { payload }),
  })
  return { status: res.statusCode, body: res.body === '' ? null : res.json() }
}

async function createZone(body: object): Promise<GeofenceView> {
  const res = await rest('POST', '/api/geofences', { fleet: 'f1', ...body })
  expect(res.status, JSON.stringify(res.body)).toBe(201)
  return res.body as GeofenceView
}

const zones = async () =>
  ((await rest('GET', '/api/geofences')).body as { geofences: GeofenceView[] }).geofences

/** A polygon's path on the page, by zone id. */
const zonePath = (page: Page, id: string) => page.locator(`path[data-zone="${id}"]`)

/** The page signed in with `authorization`'s token. */
const signedIn = (authorization: string) =>
  `${base}/#token=${authorization.replace(/^Bearer /, '')}`

/** Where the map is on the page: its box, less the side panel over its right part. */
async function mapBox(page: Page) {
  const map = (await page.locator('#map').boundingBox())!
  const panel = (await page.locator('#panel').boundingBox())!
  return { x: map.x, y: map.y, width: panel.x - map.x, height: map.height }
}

/**
 * Resolves once the map has stopped moving (a drag's inertia): its pane's transform the
 * same over 10 animation frames. Clicks meant for a place on the map wait for it.
 */
async function mapAtRest(page: Page): Promise<void> {
  await page.evaluate(
    () =>
      new Promise<void>((resolve) => {
        const pane = document.querySelector<HTMLElement>('.leaflet-map-pane')!
        let last = ''
        let still = 0
        const check = () => {
          const now = pane.style.transform
          still = now === last ? still + 1 : 0
          last = now
          if (still >= 10) resolve()
          else requestAnimationFrame(check)
        }
        requestAnimationFrame(check)
      }),
  )
}

describe('zones on the map', () => {
  // Each test starts with no zone, whatever the last one left.
  afterEach(async () => {
    for (const zone of await zones()) await rest('DELETE', `/api/geofences/${zone.id}`)
  })

  it('draws zones made over REST under the drones, faded outside their window, named in a tooltip, and follows their changes live; a viewer has no drawing tools', async () => {
    const noFly = await createZone({
      name: 'Stadium',
      kind: 'no_fly',
      geometry: {
        type: 'Polygon',
        coordinates: [square(CENTRE.lat - 0.004, CENTRE.lon - 0.006, 0.008)],
      },
    })
    const later = await createZone({
      name: 'Market (Sundays)',
      kind: 'no_fly',
      geometry: {
        type: 'Polygon',
        coordinates: [square(CENTRE.lat + 0.006, CENTRE.lon + 0.004, 0.005)],
      },
      activeFrom: new Date(Date.now() + 86_400_000).toISOString(),
    })
    const park = await createZone({
      name: 'Park',
      kind: 'area',
      geometry: {
        type: 'Polygon',
        coordinates: [square(CENTRE.lat - 0.011, CENTRE.lon + 0.004, 0.005)],
      },
    })

    const { page, errors } = await openPage(browser, signedIn(viewer))
    await zonePath(page, noFly.id).waitFor({ timeout: 15_000 })
    await expect.poll(() => page.locator('path.zone').count()).toBe(3)

    // In a pane of their own, under the drones' (and the stations').
    const panes = await page.evaluate(() => {
      const z = (selector: string) =>
        Number(getComputedStyle(document.querySelector(selector)!).zIndex)
      return {
        zones: z('.leaflet-zones-pane'),
        drones: z('.leaflet-drones-pane'),
        markers: z('.leaflet-marker-pane'),
      }
    })
    expect(panes.zones).toBeLessThan(panes.markers)
    expect(panes.markers).toBeLessThan(panes.drones)
    for (const zone of [noFly, later, park])
      expect(
        await zonePath(page, zone.id).evaluate((p) => p.closest('.leaflet-pane')!.className),
      ).toContain('leaflet-zones-pane')
    // A no-fly zone hatched, an area outlined; one outside its window faded.
    const look = (id: string) =>
      zonePath(page, id).evaluate((p) => {
        const style = getComputedStyle(p)
        return {
          fill: style.fill,
          strokeOpacity: Number(style.strokeOpacity),
          cls: p.getAttribute('class'),
        }
      })
    expect(await look(noFly.id)).toMatchObject({ fill: 'url("#zone-hatch")', strokeOpacity: 0.9 })
    expect((await look(later.id)).cls).toContain('zone-inactive')
    expect((await look(later.id)).strokeOpacity).toBeLessThan(0.5)
    expect((await look(park.id)).cls).toContain('zone-area')

    // Its name in a tooltip, over the zone.
    const box = (await zonePath(page, noFly.id).boundingBox())!
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.3)
    await expect
      .poll(() => page.locator('.zone-tooltip').last().textContent())
      .toBe('Stadiumno-fly zone')
    const laterBox = (await zonePath(page, later.id).boundingBox())!
    await page.mouse.move(laterBox.x + laterBox.width / 2, laterBox.y + laterBox.height / 2)
    await expect
      .poll(() => page.locator('.zone-tooltip').last().textContent())
      .toMatch(/^Market \(Sundays\)no-fly zone · inactive until \d{4}-\d\d-\d\d \d\d:\d\d$/)
    await page.mouse.move(0, 0)

    // The drones fly over the zones: drawn on their canvas, above.
    await expect
      .poll(
        () =>
          page.$eval('canvas.drone-layer', (c) => {
            const canvas = c as HTMLCanvasElement
            const data = canvas
              .getContext('2d')!
              .getImageData(0, 0, canvas.width, canvas.height).data
            let n = 0
            for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) n++
            return n
          }),
        { timeout: 15_000 },
      )
      .toBeGreaterThan(20)
    // The picture in the README (docs/map-zones.png): a zone's tooltip up.
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.3)
    await page.locator('.zone-tooltip').last().waitFor()
    await page.screenshot({ path: join(OUTPUT, 'map-zones.png') })
    await page.mouse.move(0, 0)

    // Changes made elsewhere come in live (the stream's notice), without a reload.
    const added = await createZone({
      name: 'Hospital',
      kind: 'no_fly',
      geometry: {
        type: 'Polygon',
        coordinates: [square(CENTRE.lat + 0.01, CENTRE.lon - 0.01, 0.003)],
      },
    })
    await zonePath(page, added.id).waitFor({ timeout: 5_000 })
    expect((await rest('PATCH', `/api/geofences/${later.id}`, { activeFrom: null })).status).toBe(
      200,
    )
    await expect
      .poll(async () => (await look(later.id)).cls, { timeout: 5_000 })
      .not.toContain('zone-inactive')
    expect((await rest('DELETE', `/api/geofences/${added.id}`)).status).toBe(204)
    await zonePath(page, added.id).waitFor({ state: 'detached', timeout: 5_000 })

    // A viewer may not draw: no tools, and Geoman not even loaded.
    await expect
      .poll(() =>
        page.evaluate(() =>
          performance.getEntriesByType('resource').some((e) => e.name.endsWith('/api/auth/me')),
        ),
      )
      .toBe(true)
    expect(await page.locator('.leaflet-pm-toolbar').count()).toBe(0)
    expect(
      await page.evaluate(() =>
        performance.getEntriesByType('resource').filter((e) => e.name.includes('zone-editor')),
      ),
    ).toEqual([])
    // A click on a zone opens nothing for a viewer.
    await page.mouse.click(box.x + box.width * 0.3, box.y + box.height * 0.3)
    expect(await page.isVisible('#zone-form')).toBe(false)
    expect(errors).toEqual([])
    await page.close()
  })

  it('turns a zone active when its window opens, on the page clock, with no word from the api', async () => {
    const opens = Date.now() + 3_600_000
    const soon = await createZone({
      name: 'Parade',
      kind: 'no_fly',
      geometry: { type: 'Polygon', coordinates: [square(CENTRE.lat, CENTRE.lon, 0.004)] },
      activeFrom: new Date(opens).toISOString(),
    })
    const { page, errors } = await openPage(browser, signedIn(viewer))
    // The page's clock held 3 s before the window opens: its timers fire only as the test
    // moves it on (the live stream's watchdog, 15 s, stays quiet; frames still come).
    await page.clock.install({ time: opens - 4_000 })
    await page.clock.pauseAt(opens - 3_000)
    // The page reads the zones twice: at start, and on the live stream's snapshot.
    let reads = 0
    page.on('response', (r) => void (r.url().endsWith('/api/geofences') && reads++))
    await page.reload()
    await expect.poll(() => page.textContent('#connection'), { timeout: 15_000 }).toBe('live')
    await expect.poll(() => reads, { timeout: 5_000 }).toBe(2)
    // Attached, not visible: the map is fitted to the fleet at an animation frame, held too.
    await zonePath(page, soon.id).waitFor({ state: 'attached' })
    expect(await zonePath(page, soon.id).getAttribute('class')).toContain('zone-inactive')
    // From here on, a read of the zones never comes back: what turns the zone active can
    // only be the page's own timer.
    await page.route('**/api/geofences', () => undefined)
    await page.clock.runFor(3_100)
    expect(await zonePath(page, soon.id).getAttribute('class')).not.toContain('zone-inactive')
    expect(errors).toEqual([])
    await page.close()
  })

  it('lets an operator draw a polygon with Geoman, save it, move a vertex, drag it and delete it, each held by the api; refusals are shown', async () => {
    const { page, errors } = await openPage(browser, signedIn(operator))
    await page.locator('.leaflet-pm-toolbar').first().waitFor({ timeout: 15_000 })
    // The fleet is drawn (the map fitted to it): then the map is moved off it, so that no
    // station takes the clicks meant for the map.
    await page.waitForSelector('.station-name', { timeout: 15_000 })
    const m = await mapBox(page)
    const cx = m.x + m.width / 2
    const cy = m.y + m.height / 2
    await page.mouse.move(m.x + m.width - 40, m.y + m.height - 40)
    await page.mouse.down()
    await page.mouse.move(m.x + 60, m.y + 60, { steps: 8 })
    await page.mouse.up()
    await mapAtRest(page)

    // Draw: three corners, then the first again to close the polygon.
    await page.click('.leaflet-pm-icon-polygon')
    const corners: [number, number][] = [
      [cx - 120, cy - 80],
      [cx + 120, cy - 80],
      [cx + 60, cy + 90],
    ]
    for (const [x, y] of corners) await page.mouse.click(x, y)
    await page.mouse.click(corners[0]![0], corners[0]![1])
    await page.locator('#zone-form').waitFor({ state: 'visible' })
    expect(await page.textContent('#zone-form-title')).toBe('New zone')
    expect(await page.$$eval('#zone-fleet option', (os) => os.map((o) => o.textContent))).toEqual([
      'f1',
    ])

    // A name of blanks passes the browser's `required`, not the api: its 400 is shown.
    await page.fill('#zone-name', '   ')
    await page.click('#zone-save')
    await expect.poll(() => page.textContent('#zone-error')).toMatch(/^bad_request: .*name/)
    expect(await zones()).toEqual([])

    await page.fill('#zone-name', 'Drawn by hand')
    await page.selectOption('#zone-kind', 'area')
    await page.click('#zone-save')
    await page.locator('#zone-form').waitFor({ state: 'hidden' })
    const [saved] = await zones()
    expect(saved).toMatchObject({ name: 'Drawn by hand', kind: 'area', fleetId: 'f1' })
    expect(saved!.geometry.type).toBe('Polygon')
    expect(saved!.geometry.coordinates[0]).toHaveLength(4) // three corners, closed
    await zonePath(page, saved!.id).waitFor()
    expect(await page.locator('path.zone').count()).toBe(1) // the drawing gave way to the zone

    // Edit: a vertex dragged elsewhere is PATCHed.
    await page.click('.leaflet-pm-icon-edit')
    const vertex = page.locator('.leaflet-marker-pane .marker-icon:not(.marker-icon-middle)')
    await expect.poll(() => vertex.count()).toBe(3)
    await page.mouse.move(corners[2]![0], corners[2]![1])
    await page.mouse.down()
    await page.mouse.move(corners[2]![0] + 40, corners[2]![1] + 50, { steps: 5 })
    await page.mouse.up()
    await expect
      .poll(async () => (await zones())[0]!.updatedAt, { timeout: 5_000 })
      .not.toBe(saved!.updatedAt)
    const [afterVertex] = await zones()
    expect(afterVertex!.geometry.coordinates[0]).not.toEqual(saved!.geometry.coordinates[0])
    expect(afterVertex!.geometry.coordinates[0]!.slice(0, 2)).toEqual(
      saved!.geometry.coordinates[0]!.slice(0, 2),
    )
    await page.click('.leaflet-pm-icon-edit')

    // Drag: the whole zone moves, and is PATCHed.
    await page.click('.leaflet-pm-icon-drag')
    const inside: [number, number] = [cx, cy - 40]
    await page.mouse.move(...inside)
    await page.mouse.down()
    await page.mouse.move(inside[0] - 80, inside[1] + 30, { steps: 6 })
    await page.mouse.up()
    await expect
      .poll(async () => (await zones())[0]!.updatedAt, { timeout: 5_000 })
      .not.toBe(afterVertex!.updatedAt)
    const [dragged] = await zones()
    const [lon0, lat0] = afterVertex!.geometry.coordinates[0]![0] as [number, number]
    const [lon1, lat1] = dragged!.geometry.coordinates[0]![0] as [number, number]
    expect(lon1).toBeLessThan(lon0) // dragged west
    expect(lat1).toBeLessThan(lat0) // and south
    await page.click('.leaflet-pm-icon-drag')

    // Its fields, from a click on it: a window that ends before it starts is refused.
    const box = (await zonePath(page, saved!.id).boundingBox())!
    const centre: [number, number] = [box.x + box.width / 2, box.y + box.height / 3]
    await page.mouse.click(...centre)
    await page.locator('#zone-form').waitFor({ state: 'visible' })
    expect(await page.inputValue('#zone-name')).toBe('Drawn by hand')
    await page.fill('#zone-from', '2031-01-02T10:00')
    await page.fill('#zone-until', '2031-01-01T10:00')
    await page.click('#zone-save')
    await expect.poll(() => page.textContent('#zone-error')).toMatch(/^bad_range: /)
    await page.fill('#zone-until', '')
    await page.fill('#zone-name', 'Renamed')
    await page.click('#zone-save')
    await page.locator('#zone-form').waitFor({ state: 'hidden' })
    expect((await zones())[0]).toMatchObject({ name: 'Renamed', activeUntil: null })
    expect(Date.parse((await zones())[0]!.activeFrom!)).toBe(Date.parse('2031-01-02T10:00'))
    await expect
      .poll(() => zonePath(page, saved!.id).getAttribute('class'))
      .toContain('zone-inactive')

    // Remove: Geoman's removal mode, a click on the zone, and the api deletes it.
    await page.click('.leaflet-pm-icon-delete')
    await page.mouse.click(...centre)
    await expect.poll(zones, { timeout: 5_000 }).toEqual([])
    await zonePath(page, saved!.id).waitFor({ state: 'detached' })
    // The two refusals above are the only errors the page saw.
    expect(errors.filter((e) => !/status of 400/.test(e))).toEqual([])
    expect(errors).toHaveLength(2)
    await page.close()
  })
})
