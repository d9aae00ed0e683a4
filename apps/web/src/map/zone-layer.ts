import L from 'leaflet'
import type { GeofenceView } from '@skyline/schemas'
import { isActive, nextWindowEdge } from '../zones.ts'
import type { ZoneStore } from '../zones.ts'

/**
 * The zones' pane: above the tiles (200), below the overlays (400: tracks and routes), the
 * station markers (600) and the drones (620): a zone never hides what flies over it.
 */
export const ZONES_PANE = 'zones'
const ZONES_Z_INDEX = '350'

/** Longest wait for a window's edge, ms (setTimeout holds at most 2^31-1). */
const MAX_WAIT_MS = 2 ** 31 - 1

/** How each kind looks: a no-fly zone red and hatched (styles.css `.zone-no-fly`), an area outlined. */
const STYLE: Record<GeofenceView['kind'], L.PathOptions> = {
  no_fly: { color: '#c1121f', weight: 2, opacity: 0.9, fillOpacity: 1 },
  // A faint fill so that the inside takes the pointer (its tooltip, a click).
  area: { color: '#1d4ed8', weight: 2, opacity: 0.9, fillColor: '#1d4ed8', fillOpacity: 0.06 },
}
/** Outside its window a zone is drawn faded and dashed: it is there, but does not hold now. */
const INACTIVE: L.PathOptions = { opacity: 0.4, fillOpacity: 0.35, dashArray: '5 5' }

const pad = (n: number) => String(n).padStart(2, '0')
/** `yyyy-mm-dd hh:mm`, the browser's local time. */
function localTime(iso: string): string {
  const d = new Date(iso)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`
}

/** What a zone's tooltip says: its name, its kind, and its window as it stands at `now`. */
export function zoneText(zone: GeofenceView, now: number): { name: string; detail: string } {
  const kind = zone.kind === 'no_fly' ? 'no-fly zone' : 'area'
  let when = ''
  if (!isActive(zone, now)) {
    when =
      zone.activeFrom !== null && now < Date.parse(zone.activeFrom)
        ? ` · inactive until ${localTime(zone.activeFrom)}`
        : ` · inactive since ${localTime(zone.activeUntil!)}`
  } else if (zone.activeUntil !== null) when = ` · until ${localTime(zone.activeUntil)}`
  return { name: zone.name, detail: `${kind}${when}` }
}

/** Whether a polygon already has a zone's shape (as GeoJSON writes it). */
function sameShape(layer: L.Polygon, zone: GeofenceView): boolean {
  return JSON.stringify(layer.toGeoJSON().geometry) === JSON.stringify(zone.geometry)
}

interface Drawn {
  zone: GeofenceView
  active: boolean
  layer: L.Polygon
}

/**
 * Every zone of the store as an SVG polygon in a pane of its own, under the drones: a
 * no-fly zone red and hatched, an area outlined, either faded outside its window (judged
 * on the page's clock, and again at the next edge of a window). Its name is in a tooltip.
 * A zone is drawn anew only when it changed (its `updatedAt`) or crossed its window's
 * edge, so a reload does not disturb an edit under way.
 */
export class ZoneLayer {
  private readonly group = L.featureGroup()
  private readonly renderer: L.SVG
  private readonly drawn = new Map<string, Drawn>()
  private editable = false
  private edgeTimer: ReturnType<typeof setTimeout> | undefined
  /** Told of each polygon drawn for a zone (the editor listens to its edits). */
  onLayer: (layer: L.Polygon, zone: GeofenceView) => void = () => undefined

  constructor(
    map: L.Map,
    private readonly store: ZoneStore,
    private readonly now: () => number = Date.now,
  ) {
    const pane = map.getPane(ZONES_PANE) ?? map.createPane(ZONES_PANE)
    pane.style.zIndex = ZONES_Z_INDEX
    this.renderer = L.svg({ pane: ZONES_PANE })
    this.group.addTo(map)
    store.onChange(() => this.update())
  }

  /** The renderer zones are drawn with: a zone being drawn uses it too, in the same pane. */
  get zoneRenderer(): L.SVG {
    return this.renderer
  }

  /** Makes the zones editable by the drawing tools (Geoman's `pmIgnore: false`): drawn anew. */
  setEditable(editable: boolean): void {
    if (editable === this.editable) return
    this.editable = editable
    for (const id of [...this.drawn.keys()]) this.erase(id)
    this.update()
  }

  /** The zone a polygon of this layer stands for. */
  zoneOf(layer: L.Layer): GeofenceView | undefined {
    for (const d of this.drawn.values()) if (d.layer === layer) return d.zone
    return undefined
  }

  /** Draws what changed since the last time. */
  update(): void {
    const now = this.now()
    for (const id of this.drawn.keys()) if (!this.store.zones.has(id)) this.erase(id)
    for (const zone of this.store.zones.values()) {
      const active = isActive(zone, now)
      let d = this.drawn.get(zone.id)
      // A new shape is drawn anew; the same shape (an edit made here, saved) keeps its
      // polygon, so that an edit under way goes on undisturbed.
      if (d !== undefined && d.zone.updatedAt !== zone.updatedAt && !sameShape(d.layer, zone)) {
        this.erase(zone.id)
        d = undefined
      }
      if (d === undefined) this.draw(zone, active)
      else if (d.zone !== zone || d.active !== active) {
        d.layer.setStyle(this.style(zone, active))
        const el = d.layer.getElement()
        el?.classList.toggle('zone-no-fly', zone.kind === 'no_fly')
        el?.classList.toggle('zone-area', zone.kind === 'area')
        el?.classList.toggle('zone-inactive', !active)
        d.layer.setTooltipContent(this.tooltip(zone, now))
        d.zone = zone
        d.active = active
      }
    }
    this.armEdgeTimer(now)
  }

  /** Draws a zone again as the store has it (an edit or a removal the api refused). */
  restore(id: string): void {
    this.erase(id)
    this.update()
  }

  private draw(zone: GeofenceView, active: boolean): void {
    const latLngs = L.GeoJSON.coordsToLatLngs(
      zone.geometry.coordinates,
      zone.geometry.type === 'Polygon' ? 1 : 2,
    ) as L.LatLng[][] | L.LatLng[][][]
    const layer = L.polygon(latLngs, {
      ...this.style(zone, active),
      pane: ZONES_PANE,
      renderer: this.renderer,
      className: `zone zone-${zone.kind === 'no_fly' ? 'no-fly' : 'area'}${active ? '' : ' zone-inactive'}`,
      // Geoman (the editor) takes only the layers that opt in.
      pmIgnore: !this.editable,
    })
    layer.bindTooltip(this.tooltip(zone, this.now()), { sticky: true, className: 'zone-tooltip' })
    layer.addTo(this.group)
    layer.getElement()?.setAttribute('data-zone', zone.id)
    this.drawn.set(zone.id, { zone, active, layer })
    this.onLayer(layer, zone)
  }

  private erase(id: string): void {
    const d = this.drawn.get(id)
    if (d === undefined) return
    this.group.removeLayer(d.layer)
    this.drawn.delete(id)
  }

  private style(zone: GeofenceView, active: boolean): L.PathOptions {
    return { ...STYLE[zone.kind], ...(active ? { dashArray: '' } : INACTIVE) }
  }

  /** The tooltip's content, as elements: a zone's name is text, never markup. */
  private tooltip(zone: GeofenceView, now: number): HTMLElement {
    const { name, detail } = zoneText(zone, now)
    const el = document.createElement('div')
    const strong = document.createElement('strong')
    strong.className = 'zone-name'
    strong.textContent = name
    const small = document.createElement('div')
    small.className = 'zone-detail'
    small.textContent = detail
    el.append(strong, small)
    return el
  }

  /** Redraws at the next edge of a window, when a zone starts or stops holding. */
  private armEdgeTimer(now: number): void {
    clearTimeout(this.edgeTimer)
    const edge = nextWindowEdge(this.store.zones.values(), now)
    if (edge === undefined) return
    this.edgeTimer = setTimeout(() => this.update(), Math.min(edge - now + 50, MAX_WAIT_MS))
  }
}
