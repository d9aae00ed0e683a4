import L from 'leaflet'
import 'leaflet/dist/leaflet.css'
import './styles.css'
import type { DroneViewState } from '@skyline/schemas'
import { DRONE_STATES } from '@skyline/schemas/constants'
import { getConfig, getFleet, getMe, listGeofences } from './api.ts'
import { LiveConnection } from './live.ts'
import { DroneLayer } from './map/drone-layer.ts'
import { DroneTrack } from './map/drone-track.ts'
import { TrackReplay } from './map/replay.ts'
import { StationLayer } from './map/stations.ts'
import { ZoneLayer } from './map/zone-layer.ts'
import { AlertsPanel } from './panel/alerts.ts'
import { DeliveriesTab } from './panel/deliveries.ts'
import { DispatchForm } from './panel/dispatch.ts'
import { DroneDetails } from './panel/drone-details.ts'
import { FleetList } from './panel/fleet-list.ts'
import { ZoneForm } from './panel/zone-form.ts'
import type { Changes } from './store.ts'
import { FleetStore } from './store.ts'
import { onRenewed, token } from './session.ts'
import { SignIn } from './signin.ts'
import { measure } from './timing.ts'
import { ZoneStore } from './zones.ts'

// Wires the page: the store, fed by GET /api/fleet then /api/live, and the views
// that draw it (map layers, fleet list, deliveries, dispatch form); the zones, read from
// GET /api/geofences whenever the live stream says they changed, drawn under the drones,
// and for an operator drawn and edited with Leaflet-Geoman (map/zone-editor.ts); the
// alerts, from the live stream, listed and for an operator acknowledged (panel/alerts.ts).

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T

// The list's state filter: a drone's states, and `stale` (silent too long).
const STATES: DroneViewState[] = [...DRONE_STATES, 'stale']

const store = new FleetStore()
const map = L.map('map', { preferCanvas: true, worldCopyJump: true, zoomControl: true })
map.setView([20, 0], 2)
L.control.scale({ imperial: false }).addTo(map)
const zones = new ZoneStore(listGeofences, (message) => showError(message))
const zoneLayer = new ZoneLayer(map, zones)
const drones = new DroneLayer(store).addTo(map)
const stations = new StationLayer(map, store, (key) => select(key))
const list = new FleetList($('fleet-list'), store, $('fleet-head'))
const connection = $('connection')
const counts = $('counts')

const replay = new TrackReplay(map, (index, point) => deliveries.moved(index, point, replay.length))
const deliveries = new DeliveriesTab(
  {
    status: $('deliveries-status'),
    refresh: $('deliveries-refresh'),
    list: $('deliveries-list'),
    newer: $('deliveries-newer'),
    older: $('deliveries-older'),
    replay: $('replay'),
    replayTitle: $('replay-title'),
    replayClose: $('replay-close'),
    replayPlay: $('replay-play'),
    replaySlider: $('replay-slider'),
    replayTime: $('replay-time'),
  },
  replay,
  showError,
)
const dispatch = new DispatchForm(
  {
    form: $('dispatch-form'),
    fleet: $('dispatch-fleet'),
    pickup: $('dispatch-pickup'),
    dropoff: $('dispatch-dropoff'),
    payload: $('dispatch-payload'),
    submit: $('dispatch-submit'),
    result: $('dispatch-result'),
  },
  store,
)

// Selecting a drone (list, map or a station's docked list) opens its details and its
// recent track, and centres the map on it and follows it until the operator drags the map.
const details = new DroneDetails(
  {
    panel: $('drone-details'),
    title: $('drone-details-title'),
    close: $('drone-details-close'),
  },
  store,
  () => select(null),
)
const track = new DroneTrack(map, showError)
let selected: string | null = null
let following = false
function select(key: string | null): void {
  const d = key === null ? undefined : store.drones.get(key)
  if (key !== selected) void track.show(d ?? null)
  selected = key
  following = key !== null
  drones.select(key)
  list.select(key)
  details.show(key)
  if (d?.position != null)
    map.setView([d.position.lat, d.position.lon], Math.max(map.getZoom(), 14))
}
/** Keeps a followed drone in the centre, at the zoom the operator chose. */
function centreOnSelected(): void {
  const d = selected === null ? undefined : store.drones.get(selected)
  if (following && d?.position != null)
    map.panTo([d.position.lat, d.position.lon], { animate: false })
}
list.onSelected(select)
const alerts = new AlertsPanel(
  {
    list: $('alerts-list'),
    count: $('alerts-count'),
    error: $('alerts-error'),
    notice: $('alert-notice'),
  },
  store,
  select,
)
map.on('click', (e) => {
  const hit = drones.hit(e.containerPoint)
  select(hit === undefined ? null : `${hit.fleetId}/${hit.id}`)
})
map.on('dragstart', () => (following = false))

// Fleet list filters.
const search = $<HTMLInputElement>('fleet-search')
const stateFilter = $<HTMLSelectElement>('fleet-state')
for (const s of STATES) stateFilter.add(new Option(s.replace('_', ' '), s))
const applyFilter = () => list.filter(search.value, stateFilter.value)
search.addEventListener('input', applyFilter)
stateFilter.addEventListener('change', applyFilter)

// Tabs.
const tabs = [...document.querySelectorAll<HTMLButtonElement>('[role=tab]')]
let tab = 'fleet'
for (const button of tabs) {
  button.addEventListener('click', () => {
    tab = button.dataset.tab ?? 'fleet'
    for (const b of tabs) b.setAttribute('aria-selected', String(b === button))
    for (const b of tabs) $(`tab-${b.dataset.tab}`).hidden = b !== button
    if (tab === 'deliveries') void deliveries.first()
  })
}

// Updates are merged as they come and drawn once per animation frame.
let pending: Changes | undefined
let scheduled = false
let fitted = false
function changed(c: Changes): void {
  if (pending === undefined || c.reset) pending = c
  else {
    for (const k of c.drones) pending.drones.add(k)
    pending.stations ||= c.stations
    pending.deliveries ||= c.deliveries
    pending.deliveryStatuses ||= c.deliveryStatuses
    pending.alerts ||= c.alerts
    pending.opened.push(...c.opened)
  }
  // One render per animation frame at most; a hidden tab queues one, not thousands.
  if (!scheduled) {
    scheduled = true
    requestAnimationFrame(render)
  }
}
function render(): void {
  scheduled = false
  const c = pending
  if (c === undefined) return
  pending = undefined
  const started = performance.now()
  if (c.stations) {
    stations.update()
    dispatch.update()
  }
  list.update(c)
  // With drones of several fleets the list shows and searches the fleet too (issue 16).
  const searchLabel = list.manyFleets ? 'Search drone or fleet' : 'Search drone id'
  if (search.placeholder !== searchLabel) {
    search.placeholder = searchLabel
    search.setAttribute('aria-label', searchLabel.toLowerCase())
  }
  drones.redraw()
  if (!fitted) fitted = fitToFleet()
  if (selected !== null && (c.drones.has(selected) || c.deliveries)) {
    const d = store.drones.get(selected)
    if (d !== undefined) track.moved(d)
    if (c.drones.has(selected)) centreOnSelected()
    details.update()
  }
  if (c.deliveryStatuses && tab === 'deliveries') deliveries.refreshIfFirst()
  if (c.alerts) alerts.update()
  alerts.announce(c.opened)
  const byState = store.countByState()
  counts.textContent = `${store.drones.size} drones · ${byState.get('offline') ?? 0} offline · ${store.deliveries.size} deliveries in progress · ${store.stations.size} stations`
  // User Timing entries: the benchmark reads them (bench/web.ts), and so can DevTools.
  measure('skyline:render', started)
}

function fitToFleet(): boolean {
  const points: L.LatLngTuple[] = [...store.stations.values()].map((s) => [s.lat, s.lon])
  for (const d of store.drones.values())
    if (d.position) points.push([d.position.lat, d.position.lon])
  if (points.length === 0) return false
  map.fitBounds(L.latLngBounds(points), { padding: [30, 30], maxZoom: 15 })
  return true
}

/**
 * What only an operator has: the alerts' Acknowledge buttons, and the zone editor (loaded
 * only then, for Geoman's size).
 */
async function startOperatorTools(): Promise<void> {
  const me = await getMe()
  alerts.setOperates(me.operates)
  if (!me.operates) return
  const { ZoneEditor } = await import('./map/zone-editor.ts')
  const form = new ZoneForm({
    form: $('zone-form'),
    title: $('zone-form-title'),
    name: $('zone-name'),
    kind: $('zone-kind'),
    fleet: $('zone-fleet'),
    from: $('zone-from'),
    until: $('zone-until'),
    save: $('zone-save'),
    cancel: $('zone-cancel'),
    remove: $('zone-delete'),
    error: $('zone-error'),
  })
  const message = $('zone-message')
  const seenFleets = () =>
    [
      ...new Set([
        ...[...store.drones.values()].map((d) => d.fleetId),
        ...[...store.stations.values()].map((s) => s.fleetId),
        ...zones.fleets(),
      ]),
    ].sort()
  new ZoneEditor(map, zones, zoneLayer, form, me, seenFleets, (text) => {
    message.textContent = text
    message.hidden = text === ''
  })
}

function showError(message: string): void {
  console.warn(message)
  connection.title = message
}

// Signing in (signin.ts). The live stream signs in again with a renewed token.
let live: LiveConnection | undefined
const signIn = new SignIn(() => live?.stop())
onRenewed(() => live?.renew())

async function start(): Promise<void> {
  if (!(await signIn.start())) return
  const config = await getConfig().catch(() => ({ tileUrl: null, tileAttribution: '' }))
  if (config.tileUrl !== null) {
    // Without a reachable tile server the map keeps working on its plain background.
    // The page's Referrer-Policy is no-referrer; tile servers want a Referer (OpenStreetMap
    // blocks tiles without one): the tiles send the map's origin, which holds no token.
    L.tileLayer(config.tileUrl, {
      attribution: config.tileAttribution,
      maxZoom: 19,
      referrerPolicy: 'strict-origin',
    }).addTo(map)
  }
  void zones.load()
  startOperatorTools().catch((err: unknown) =>
    showError(`operator tools: ${(err as Error).message}`),
  )
  try {
    changed(store.applySnapshot(await getFleet()))
  } catch (err) {
    showError(`fleet: ${(err as Error).message}`)
  }
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
  live = new LiveConnection({
    url: `${scheme}//${location.host}/api/live`,
    token,
    onRefused: (reason) => void signIn.refuse(`The live stream refused the token: ${reason}`),
    onFrame: (frame) => {
      const started = performance.now()
      // Zones are read again when they changed, and after a reconnection (a notice may
      // have been missed meanwhile).
      if (frame.type === 'snapshot' || (frame.type === 'changes' && frame.geofences?.length))
        void zones.load()
      changed(store.apply(frame))
      measure('skyline:apply', started)
    },
    onState: (state, retryInMs) => {
      connection.dataset.state = state
      connection.textContent =
        state === 'live'
          ? 'live'
          : state === 'connecting'
            ? 'connecting…'
            : `reconnecting${retryInMs === undefined ? '…' : ` in ${Math.ceil(retryInMs / 1000)} s`}`
    },
  })
  live.start()
}

void start()
