import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DeliveryView, DroneView, FleetView, StationView } from '@skyline/schemas'
import type { Browser, Page, WebSocketRoute } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { servePage } from './build-page.ts'
import { launchChromium, openPage } from './browser.ts'

// Issue 18, "the map for a long shift": 50 drones over 4 stations, crowded enough that
// labels compete for room. The page is served as built and the live stream is played by
// the test (as in signal-lost.test.ts); a drone's track comes from a stand-in of the api's
// GET /api/drones/{id}/track that records how it was asked.

/** Screenshots for a person to look at (not committed). */
const OUTPUT = fileURLToPath(new URL('../test-results', import.meta.url))
const NOW = Date.now()
const ago = (s: number) => new Date(NOW - s * 1000).toISOString()
const ETA = /^\d\d:\d\d:\d\d \(\d+ min\)$/
const CENTRE = { lat: 48.85, lon: 2.35 }

/** A repeatable scatter around the centre, ±`spread` degrees. */
let seed = 18
const jitter = (spread: number) => {
  seed = (seed * 16_807) % 2_147_483_647
  return ((seed / 2_147_483_647) * 2 - 1) * spread
}

const station = (n: number, lat: number, lon: number, docked: string[]): StationView => ({
  id: `s${n}`,
  fleetId: 'f1',
  name: `Station ${['north', 'east', 'south', 'west'][n - 1]}`,
  lat,
  lon,
  capacity: 6,
  docked,
  online: true,
  statusAt: ago(60),
  onlineChangedAt: ago(3600),
})

const id = (n: number) => `d${String(n).padStart(2, '0')}`
const stations = [
  station(1, CENTRE.lat + 0.006, CENTRE.lon, [id(1), id(2), id(3)]),
  station(2, CENTRE.lat, CENTRE.lon + 0.009, [id(4), id(5), id(6)]),
  station(3, CENTRE.lat - 0.006, CENTRE.lon, [id(7), id(8), id(9)]),
  station(4, CENTRE.lat, CENTRE.lon - 0.009, [id(10), id(11), id(12)]),
]

/**
 * d01–d12 docked, three a station; d13–d32 flying deliveries with an ETA; d33–d37 offline;
 * d38–d40 flying deliveries whose signal is lost; d41–d50 idle in the air.
 */
function drone(n: number): DroneView {
  const docked = stations.find((s) => s.docked.includes(id(n)))
  const flying = (n >= 13 && n <= 32) || (n >= 38 && n <= 40)
  const offline = n >= 33 && n <= 40
  return {
    id: id(n),
    fleetId: 'f1',
    online: !offline,
    state: docked !== undefined ? 'charging' : offline ? 'offline' : flying ? 'en_route' : 'idle',
    stationId: docked?.id ?? null,
    model: null,
    firmware: null,
    position:
      docked !== undefined
        ? { lat: docked.lat, lon: docked.lon, altM: 35 }
        : { lat: CENTRE.lat + jitter(0.004), lon: CENTRE.lon + jitter(0.006), altM: 80 },
    speedMps: flying ? 14 : 0,
    headingDeg: (n * 37) % 360,
    batteryPct: 40 + n,
    deliveryId: flying ? `x${n}` : null,
    lastSeq: 100,
    positionAt: ago(offline ? 120 : 1),
    lastSeenAt: ago(offline ? 120 : 1),
    onlineChangedAt: ago(offline ? 120 : 3600),
    offlineReason: offline ? 'connection_lost' : null,
  }
}

const delivery = (n: number): DeliveryView => ({
  id: `x${n}`,
  fleetId: 'f1',
  status: 'en_route',
  source: 'api',
  pickupStationId: 's1',
  dropoffStationId: `s${(n % 3) + 2}`,
  payloadKg: 1,
  droneId: id(n),
  distanceM: 2500,
  requestedAt: ago(600),
  assignedAt: ago(590),
  pickedUpAt: ago(400),
  departedAt: ago(390),
  arrivedAt: null,
  completedAt: null,
  failedAt: null,
  cancelledAt: null,
  failureReason: null,
  etaAt: new Date(NOW + (2 + (n % 9)) * 60_000).toISOString(),
  etaErrorS: null,
})

const drones = Array.from({ length: 50 }, (_, i) => drone(i + 1))
const fleet: FleetView = {
  at: ago(0),
  drones,
  stations,
  deliveries: drones
    .filter((d) => d.deliveryId !== null)
    .map((d) => delivery(Number(d.id.slice(1)))),
}

/** How the page asked for tracks: its Authorization header and the window. */
const trackRequests: { id: string; authorization?: string; from: string; to: string }[] = []

let served: { base: string; close(): Promise<void> } | undefined
let browser: Browser

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true })
  served = await servePage(fleet, (server) =>
    server.get<{ Params: { id: string }; Querystring: { from: string; to: string } }>(
      '/api/drones/:id/track',
      async (req) => {
        const { from, to } = req.query
        trackRequests.push({
          id: req.params.id,
          authorization: req.headers.authorization,
          from,
          to,
        })
        const d = drones.find((x) => x.id === req.params.id)!
        // Five points zigzagging from the south-west to where the drone is now, over 8 minutes.
        const points = [4, 3, 2, 1, 0].map((k, seq) => ({
          ts: new Date(Date.parse(to) - k * 120_000).toISOString(),
          seq,
          lat: d.position!.lat - k * 0.0008,
          lon: d.position!.lon - k * 0.0012 + (k % 2) * 0.0009,
          altM: 80,
          speedMps: 14,
          headingDeg: 45,
          batteryPct: 70,
          state: 'en_route',
          deliveryId: d.deliveryId,
        }))
        return { droneId: d.id, fleetId: 'f1', points }
      },
    ),
  )
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
  await served?.close()
})

/** Opens the map signed in; the test's live stream sends the snapshot. */
async function open(): Promise<{ page: Page; errors: string[]; live: () => WebSocketRoute }> {
  const { page, errors } = await openPage(browser, 'about:blank')
  let socket: WebSocketRoute | undefined
  await page.routeWebSocket(/\/api\/live$/, (ws) => {
    socket = ws
    ws.send(JSON.stringify({ type: 'snapshot', ...fleet }))
  })
  await page.goto(`${served!.base}/#token=any`)
  await expect.poll(() => page.textContent('#counts'), { timeout: 10_000 }).toMatch(/^50 drones/)
  await page.waitForSelector('.map-labels > div')
  return { page, errors, live: () => socket! }
}

interface Rect {
  what: string
  left: number
  top: number
  right: number
  bottom: number
}

/** The boxes of every label on the map, and of the station squares and docked counts. */
function boxes(page: Page): Promise<{ labels: Rect[]; stations: Rect[] }> {
  return page.evaluate(() => {
    const rect = (el: Element): Rect => {
      const r = el.getBoundingClientRect()
      const what = (el as HTMLElement).dataset.labelFor ?? (el as HTMLElement).dataset.stationLabel
      const name = `${what ?? el.className}: ${el.textContent}`
      return { what: name, left: r.left, top: r.top, right: r.right, bottom: r.bottom }
    }
    return {
      labels: [...document.querySelectorAll('.map-labels > div')].map(rect),
      stations: [...document.querySelectorAll('.station-icon .station, .station-docked')].map(rect),
    }
  })
}

const intersect = (a: Rect, b: Rect) =>
  a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom

/** Every pair of boxes that overlap, by what they show. */
function overlaps(labels: Rect[], others: Rect[] = []): string[] {
  const found: string[] = []
  for (const [i, a] of labels.entries()) {
    for (const b of labels.slice(i + 1)) if (intersect(a, b)) found.push(`${a.what} × ${b.what}`)
    for (const b of others) if (intersect(a, b)) found.push(`${a.what} × ${b.what}`)
  }
  return found
}

describe('the map with 50 drones over 4 stations', () => {
  it('places the labels around their drones and stations so that no two overlap, the most important first', async () => {
    const { page, errors } = await open()
    // Fifty drones are too few to group: each is drawn.
    expect(await page.locator('.cluster-bubble').count()).toBe(0)
    const first = await boxes(page)
    expect(first.stations).toHaveLength(8)
    expect(overlaps(first.labels, first.stations)).toEqual([])
    // Crowded: labels went to every side of their anchors, and the lesser ones made room.
    const places = await page.$$eval('.map-labels > div', (els) =>
      els.map((e) => (e as HTMLElement).dataset.place),
    )
    expect(new Set(places).size).toBeGreaterThanOrEqual(3)
    const kinds = await page.$$eval('.map-labels > div', (els) =>
      els.map((e) => (e as HTMLElement).className),
    )
    expect(kinds.filter((k) => k === 'drone-label drone-label-eta').length).toBeGreaterThan(5)
    expect(kinds.length).toBeLessThan(38 + 4)
    await page.screenshot({ path: join(OUTPUT, 'labels-crowded.png') })

    // Closer in there is room for more, and still no overlap.
    await page.click('.leaflet-control-zoom-in')
    await expect.poll(async () => (await boxes(page)).labels.length).toBeGreaterThan(kinds.length)
    const closer = await boxes(page)
    expect(overlaps(closer.labels, closer.stations)).toEqual([])
    // Drones with nothing else to say show their id; stations their name.
    expect(await page.locator('[data-label-for] >> text=/^d\\d\\d$/').count()).toBeGreaterThan(0)
    expect(await page.locator('.station-name').count()).toBeGreaterThan(0)

    // The selected drone's label comes first, outlined.
    await page.click('[data-drone="f1/d45"]')
    await expect
      .poll(() => page.locator('[data-label-for="f1/d45"][data-selected]').count())
      .toBe(1)
    const selected = await boxes(page)
    expect(overlaps(selected.labels, selected.stations)).toEqual([])
    await page.screenshot({ path: join(OUTPUT, 'labels-selected.png') })
    expect(errors).toEqual([])
    await page.close()
  })

  it('shows the drones docked at a station as a count on it, lists them on a click, and selects one', async () => {
    const { page, errors } = await open()
    expect(await page.locator('.station-docked').allTextContents()).toEqual(['3', '3', '3', '3'])
    await page.click('[data-station="f1/s2"] .station-docked')
    const listed = page.locator('.docked-list[data-station="f1/s2"] button')
    await expect.poll(() => listed.allTextContents()).toEqual(['d04', 'd05', 'd06'])
    await listed.nth(1).click()
    await expect.poll(() => page.isVisible('#drone-details')).toBe(true)
    expect(await page.textContent('#drone-details [data-field=id]')).toBe('d05')
    expect(await page.textContent('#drone-details [data-field=state]')).toBe('charging')
    expect(await page.getAttribute('[data-drone="f1/d05"]', 'class')).toContain('selected')
    expect(errors).toEqual([])
    await page.close()
  })

  it("opens a clicked drone's details and its last 10 minutes of track, follows the live stream, and closes", async () => {
    trackRequests.length = 0
    const { page, errors, live } = await open()
    // Click a drone with an ETA on the map, where its label says it is.
    const label = page.locator('.drone-label-eta').first()
    const key = (await label.getAttribute('data-label-for'))!
    const n = Number(key.slice('f1/d'.length))
    const d = drones[n - 1]!
    const place = await label.getAttribute('data-place')
    const box = (await label.boundingBox())!
    const gap = 10 // the arrow's half length and a gap (drone-layer.ts)
    const v = box.height / 2 + 3 // above and below clear the labels beside (label-placement.ts)
    const anchor = {
      right: { x: box.x - gap, y: box.y + box.height / 2 },
      left: { x: box.x + box.width + gap, y: box.y + box.height / 2 },
      above: { x: box.x + box.width / 2, y: box.y + box.height + v },
      below: { x: box.x + box.width / 2, y: box.y - v },
    }[place as 'right']
    await page.mouse.click(anchor.x, anchor.y)
    await expect.poll(() => page.isVisible('#drone-details')).toBe(true)

    const field = (name: string) => page.textContent(`#drone-details [data-field="${name}"]`)
    expect(await field('id')).toBe(d.id)
    expect(await field('fleet')).toBe('f1')
    expect(await field('state')).toBe('en_route')
    expect(await field('battery')).toBe(`${40 + n}%`)
    expect(await field('altitude')).toBe('80 m')
    expect(await field('speed')).toBe('14 m/s')
    expect(await field('heading')).toBe(`${(n * 37) % 360}°`)
    expect(await field('last-seen')).toMatch(/^\d\d:\d\d:\d\d$/)
    expect(await field('delivery')).toBe(`x${n} · en_route`)
    expect(await field('eta')).toMatch(ETA)

    // Its track: asked with the page's token, for the 10 minutes up to its last position.
    await expect.poll(() => trackRequests.length).toBe(1)
    const asked = trackRequests[0]!
    expect(asked.id).toBe(d.id)
    expect(asked.authorization).toBe('Bearer any')
    expect(Date.parse(asked.to)).toBe(Date.parse(d.positionAt!))
    expect(Date.parse(asked.to) - Date.parse(asked.from)).toBe(10 * 60_000)
    const track = page.locator('path.drone-track')
    await expect
      .poll(() => track.getAttribute('d'))
      .toMatch(/^M[\d.-]+ [\d.-]+(L[\d.-]+ [\d.-]+){4}$/)
    await page.locator('#map').screenshot({ path: join(OUTPUT, 'drone-details.png') })

    // The live stream moves it on: the card and the track follow.
    live().send(
      JSON.stringify({
        type: 'changes',
        at: new Date().toISOString(),
        drones: [
          {
            id: d.id,
            fleetId: 'f1',
            batteryPct: 42,
            position: { lat: d.position!.lat + 0.001, lon: d.position!.lon - 0.001, altM: 95 },
            positionAt: new Date(NOW + 5_000).toISOString(),
          },
        ],
        stations: [],
        deliveries: [],
      }),
    )
    await expect.poll(() => field('battery')).toBe('42%')
    expect(await field('altitude')).toBe('95 m')
    await expect
      .poll(() => track.getAttribute('d'))
      .toMatch(/^M[\d.-]+ [\d.-]+(L[\d.-]+ [\d.-]+){5}$/)

    // Escape closes it, and the track goes with it; so does the close button.
    await page.keyboard.press('Escape')
    await expect.poll(() => page.isVisible('#drone-details')).toBe(false)
    expect(await track.count()).toBe(0)
    await page.click(`[data-drone="${key}"]`)
    await expect.poll(() => page.isVisible('#drone-details')).toBe(true)
    await page.click('#drone-details-close')
    await expect.poll(() => page.isVisible('#drone-details')).toBe(false)
    expect(await page.getAttribute(`[data-drone="${key}"]`, 'class')).not.toContain('selected')
    expect(errors).toEqual([])
    await page.close()
  })
})
