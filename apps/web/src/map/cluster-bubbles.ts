import L from 'leaflet'
import type { Box } from './label-placement.ts'
import type { DroneCluster } from './clusters.ts'

/** A bubble's diameter by how many drones it holds, CSS px. */
export const bubbleSize = (count: number): number => (count < 100 ? 28 : count < 1_000 ? 34 : 42)

/** `1.2k` past a thousand, as maps write it. */
const short = (n: number): string =>
  n < 1_000 ? String(n) : `${(n / 1_000).toFixed(n < 10_000 ? 1 : 0).replace(/\.0$/, '')}k`

/**
 * The groups of drones as round buttons with their count (`data-count` has it exact):
 * a click zooms in to where the group splits. Page elements, not canvas, so a person
 * can tab to them and a test can read them; there are a few hundred at most in a view,
 * and they are rewritten only when the groups change (about once a second).
 */
export class ClusterBubbles {
  private readonly el: HTMLElement
  private shown = ''

  constructor(
    pane: HTMLElement,
    private readonly onClick: (id: number, lat: number, lon: number) => void,
  ) {
    this.el = L.DomUtil.create('div', 'cluster-bubbles leaflet-zoom-hide', pane)
    L.DomEvent.disableClickPropagation(this.el)
    this.el.addEventListener('click', (e) => {
      const b = (e.target as HTMLElement).closest<HTMLElement>('[data-cluster]')
      if (b === null) return
      this.onClick(Number(b.dataset.cluster), Number(b.dataset.lat), Number(b.dataset.lon))
    })
  }

  /** Shows exactly these groups; returns their boxes, for the labels to keep clear of. */
  show(clusters: DroneCluster[], origin: L.Point): Box[] {
    L.DomUtil.setPosition(this.el, origin)
    const boxes = clusters.map((c) => {
      const r = bubbleSize(c.count) / 2
      return { minX: c.x - r, minY: c.y - r, maxX: c.x + r, maxY: c.y + r }
    })
    const id = clusters
      .map((c) => `${c.id}:${c.count}:${Math.round(c.x)},${Math.round(c.y)}`)
      .join()
    if (id === this.shown) return boxes
    this.shown = id
    this.el.replaceChildren(
      ...clusters.map((c) => {
        const b = document.createElement('button')
        const size = bubbleSize(c.count)
        b.type = 'button'
        b.className = 'cluster-bubble'
        b.dataset.cluster = String(c.id)
        b.dataset.count = String(c.count)
        b.dataset.lat = String(c.lat)
        b.dataset.lon = String(c.lon)
        b.setAttribute('aria-label', `${c.count.toLocaleString('en-US')} drones: zoom in`)
        b.textContent = short(c.count)
        b.style.width = b.style.height = `${size}px`
        b.style.transform = `translate(${Math.round(c.x - size / 2)}px, ${Math.round(c.y - size / 2)}px)`
        return b
      }),
    )
    return boxes
  }

  clear(): void {
    if (this.shown === '') return
    this.shown = ''
    this.el.replaceChildren()
  }

  remove(): void {
    this.el.remove()
  }
}
