import L from 'leaflet'

/** A label beside a drone, placed in the map container's coordinates (CSS px). */
export interface MapLabel {
  /** The drone's key (`fleet/id`). */
  key: string
  x: number
  y: number
  /** `eta`: a live ETA; `lost`: the drone's signal is lost; `offline`: offline, no delivery. */
  kind: 'eta' | 'lost' | 'offline'
  text: string
  /** Beside a `lost` label: the last ETA, greyed. */
  greyed?: string
}

/**
 * The labels beside the drones (ETA, signal lost, offline since) as page elements
 * over the drones' canvas: people and tests read them as text, and a lost signal's
 * last ETA is greyed by a class. There are few of them (DroneLayer draws none past
 * MAX_LABELS in view), so each is an element, kept per drone and moved in place.
 */
export class DroneLabels {
  private readonly el: HTMLElement
  /** Each shown label's element, and what it says (to skip rewriting it). */
  private readonly byKey = new Map<
    string,
    { el: HTMLElement; shows: string; x: number; y: number }
  >()

  constructor(pane: HTMLElement) {
    this.el = L.DomUtil.create('div', 'drone-labels leaflet-zoom-hide', pane)
  }

  /** Shows exactly these labels; `origin` is where the container's corner is in layer coordinates. */
  show(labels: MapLabel[], origin: L.Point): void {
    L.DomUtil.setPosition(this.el, origin)
    const keep = new Set<string>()
    for (const label of labels) {
      keep.add(label.key)
      let shown = this.byKey.get(label.key)
      if (shown === undefined) {
        shown = { el: document.createElement('div'), shows: '', x: NaN, y: NaN }
        shown.el.dataset.labelFor = label.key
        this.el.append(shown.el)
        this.byKey.set(label.key, shown)
      }
      const shows = `${label.kind}|${label.text}|${label.greyed ?? ''}`
      if (shown.shows !== shows) {
        shown.shows = shows
        fill(shown.el, label)
      }
      // Beside the arrow (7 px half-length, and a gap), the text's middle level with the
      // drone. A 2D translate, not Leaflet's setPosition (translate3d): no compositing
      // layer for each label.
      const x = Math.round(label.x) + 10
      const y = Math.round(label.y) - 8
      if (shown.x !== x || shown.y !== y) {
        shown.x = x
        shown.y = y
        shown.el.style.transform = `translate(${x}px, ${y}px)`
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
}

function fill(el: HTMLElement, label: MapLabel): void {
  el.className = `drone-label drone-label-${label.kind}`
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
