import L from 'leaflet'
import { placeLabels } from './label-placement.ts'
import type { Box, LabelCandidate, Place } from './label-placement.ts'

/**
 * A label on the map, anchored at a point of the map container (CSS px): a drone's ETA,
 * lost signal or offline time, a drone's id, or a station's name.
 */
export interface MapLabel {
  /** What it labels: `drone:fleet/id` or `station:fleet/id`. */
  key: string
  x: number
  y: number
  /**
   * `eta`: a live ETA; `lost`: the drone's signal is lost; `offline`: offline, no
   * delivery; `id`: a drone with nothing else to say; `station`: a station's name.
   */
  kind: 'eta' | 'lost' | 'offline' | 'id' | 'station'
  text: string
  /** Beside a `lost` label: the last ETA, greyed. */
  greyed?: string
  /** The selected drone's label: placed first, outlined. */
  selected?: boolean
  /** Between the anchor and the label, px: half the marker and a gap. */
  gap: number
}

/**
 * Which labels win the room when there is not enough (issue 18): the selected drone,
 * then deliveries with their ETA, then lost signals and offline drones, then station
 * names, then drone ids.
 */
export const LABEL_PRIORITY: Record<MapLabel['kind'] | 'selected', number> = {
  selected: 0,
  eta: 1,
  lost: 2,
  offline: 2,
  station: 3,
  id: 4,
}

/** A label's height, CSS px (`.map-label` line-height). */
const LABEL_HEIGHT_PX = 16
/** Widths measured, by font and text; forgotten past this many (ETAs count down). */
const WIDTHS_MAX = 2_000

/**
 * The map's labels as page elements over the drones' canvas: people and tests read
 * them as text, and a lost signal's last ETA is greyed by a class. Each label is placed
 * around its anchor where it overlaps no other label and no obstacle (label-placement.ts);
 * one with no room is not in the page. There are few of them (DroneLayer offers at most
 * MAX_LABELS), so each is an element, kept per key and moved in place. Widths come from
 * a canvas's measureText, not from the page's layout: measuring elements would lay out
 * the page on every frame.
 */
export class MapLabels {
  private readonly el: HTMLElement
  /** Each shown label's element, and what it says (to skip rewriting it). */
  private readonly byKey = new Map<
    string,
    { el: HTMLElement; shows: string; x: number; y: number; place: Place | '' }
  >()
  private readonly widths = new Map<string, number>()
  private ctx: CanvasRenderingContext2D | null | undefined
  private family = ''

  constructor(pane: HTMLElement) {
    this.el = L.DomUtil.create('div', 'map-labels leaflet-zoom-hide', pane)
  }

  /**
   * Shows as many of these labels as fit in a `width` × `height` view without overlap;
   * `origin` is where the container's corner is in layer coordinates.
   */
  show(labels: MapLabel[], obstacles: Box[], width: number, height: number, origin: L.Point): void {
    L.DomUtil.setPosition(this.el, origin)
    const byKey = new Map(labels.map((l) => [l.key, l]))
    const candidates: LabelCandidate[] = labels.map((l) => ({
      key: l.key,
      x: l.x,
      y: l.y,
      width: this.width(l),
      height: LABEL_HEIGHT_PX,
      priority: l.selected === true ? LABEL_PRIORITY.selected : LABEL_PRIORITY[l.kind],
      gap: l.gap,
    }))
    const placed = placeLabels(candidates, obstacles, width, height)
    const keep = new Set<string>()
    for (const p of placed) {
      const label = byKey.get(p.key)!
      keep.add(p.key)
      let shown = this.byKey.get(p.key)
      if (shown === undefined) {
        shown = { el: document.createElement('div'), shows: '', x: NaN, y: NaN, place: '' }
        if (label.kind === 'station') shown.el.dataset.stationLabel = label.key.slice(8)
        else shown.el.dataset.labelFor = label.key.slice(6)
        this.el.append(shown.el)
        this.byKey.set(p.key, shown)
      }
      const shows = `${label.kind}|${label.text}|${label.greyed ?? ''}|${label.selected === true}`
      if (shown.shows !== shows) {
        shown.shows = shows
        fill(shown.el, label)
        // The measured width, so the box in the page is the box placed.
        shown.el.style.width = `${this.width(label)}px`
      }
      if (shown.place !== p.place) {
        shown.place = p.place
        shown.el.dataset.place = p.place
      }
      // A 2D translate, not Leaflet's setPosition (translate3d): no compositing layer
      // for each label.
      if (shown.x !== p.x || shown.y !== p.y) {
        shown.x = p.x
        shown.y = p.y
        shown.el.style.transform = `translate(${p.x}px, ${p.y}px)`
      }
    }
    for (const [key, shown] of this.byKey) {
      if (keep.has(key)) continue
      shown.el.remove()
      this.byKey.delete(key)
    }
  }

  remove(): void {
    this.el.remove()
    this.byKey.clear()
  }

  /** The label's width in whole px, as the page draws it (fonts of styles.css `.map-label`). */
  private width(label: MapLabel): number {
    const id = `${label.kind}|${label.text}|${label.greyed ?? ''}`
    let w = this.widths.get(id)
    if (w !== undefined) return w
    if (this.ctx === undefined) {
      this.ctx = document.createElement('canvas').getContext('2d')
      this.family = getComputedStyle(this.el).fontFamily || 'sans-serif'
    }
    const ctx = this.ctx
    const bold = label.kind === 'lost' || label.kind === 'station'
    const text = (weight: number, s: string) => {
      if (ctx === null) return s.length * 7
      ctx.font = `${weight} 11px ${this.family}`
      return ctx.measureText(s).width
    }
    w = text(bold ? 600 : 400, label.text)
    if (label.greyed !== undefined) w += text(400, ` ${label.greyed}`)
    // Room for the halo and the selection outline, and rounding in the page's text.
    w = Math.ceil(w) + 6
    if (this.widths.size >= WIDTHS_MAX) this.widths.clear()
    this.widths.set(id, w)
    return w
  }
}

function fill(el: HTMLElement, label: MapLabel): void {
  el.className =
    label.kind === 'station' ? 'map-label station-name' : `drone-label drone-label-${label.kind}`
  if (label.selected === true) el.dataset.selected = ''
  else delete el.dataset.selected
  const text = document.createElement('span')
  text.textContent = label.text
  if (label.greyed === undefined) el.replaceChildren(text)
  else {
    const greyed = document.createElement('span')
    greyed.className = 'eta-greyed'
    greyed.textContent = label.greyed
    el.replaceChildren(text, ' ', greyed)
  }
}
