import type { DroneView } from '@skyline/schemas'
import { STATE_COLOURS, batteryText, etaText, speedText, stateText } from '../format.ts'
import type { Changes, FleetStore } from '../store.ts'
import { keyOf } from '../store.ts'

interface Row {
  el: HTMLElement
  state: HTMLElement
  battery: HTMLElement
  speed: HTMLElement
  eta: HTMLElement
}

/** Longest an animation frame spends updating rows out of view, ms, and most rows. */
const BUDGET_MS = 4
const BUDGET_ROWS = 400

/**
 * The side panel's fleet list: one row per drone, created once and then updated in
 * place (only the cells whose text changed), so 10,000 drones at 1 Hz cost text
 * updates, not DOM churn. Rows in view are updated at once; the others within a few
 * ms per animation frame, so a big fleet never costs a long frame yet every row's
 * text catches up within a second or so. Rows out of view skip layout
 * (`content-visibility`). Every drone stays in the page's text, so tests and people
 * can read the fleet.
 */
export class FleetList {
  private readonly rows = new Map<string, Row>()
  private search = ''
  private stateFilter = ''
  private onSelect: (key: string) => void = () => undefined
  /** Rows whose text is behind the store. */
  private readonly dirty = new Set<string>()
  /** Rows in (or near) the list's viewport. */
  private readonly inView = new Set<string>()
  private readonly viewport: IntersectionObserver
  private flushing = 0

  constructor(
    private readonly list: HTMLElement,
    private readonly store: FleetStore,
  ) {
    this.viewport = new IntersectionObserver(
      (entries) => {
        for (const e of entries) {
          const key = (e.target as HTMLElement).dataset.drone!
          if (e.isIntersecting) this.inView.add(key)
          else this.inView.delete(key)
        }
        this.flush()
      },
      { root: list, rootMargin: '200px 0px' },
    )
    list.addEventListener('click', (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>('[data-drone]')
      if (row?.dataset.drone !== undefined) this.onSelect(row.dataset.drone)
    })
    list.addEventListener('keydown', (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>('[data-drone]')
      if ((e.key === 'Enter' || e.key === ' ') && row?.dataset.drone !== undefined) {
        e.preventDefault()
        this.onSelect(row.dataset.drone)
      }
    })
  }

  onSelected(fn: (key: string) => void): void {
    this.onSelect = fn
  }

  filter(search: string, state: string): void {
    this.search = search.trim().toLowerCase()
    this.stateFilter = state
    for (const [key, row] of this.rows) {
      const drone = this.store.drones.get(key)
      if (drone !== undefined) row.el.hidden = !this.matches(drone)
    }
  }

  select(key: string | null): void {
    for (const [k, row] of this.rows) row.el.classList.toggle('selected', k === key)
    if (key !== null) this.rows.get(key)?.el.scrollIntoView({ block: 'nearest' })
  }

  update(changes: Changes): void {
    if (changes.reset) {
      for (const [key, row] of this.rows) {
        if (!this.store.drones.has(key)) {
          this.viewport.unobserve(row.el)
          row.el.remove()
          this.rows.delete(key)
          this.dirty.delete(key)
          this.inView.delete(key)
        }
      }
    }
    let added = false
    for (const key of changes.drones) {
      const drone = this.store.drones.get(key)
      if (drone === undefined) continue
      if (!this.rows.has(key)) {
        const row = createRow(drone)
        this.rows.set(key, row)
        this.viewport.observe(row.el)
        added = true
      }
      this.dirty.add(key)
    }
    if (added) this.order()
    this.flush()
  }

  /** Updates the rows in view, then others until the frame's budget is spent. */
  private flush(): void {
    for (const key of this.inView) if (this.dirty.has(key)) this.fillKey(key)
    const deadline = performance.now() + BUDGET_MS
    let n = 0
    for (const key of this.dirty) {
      this.fillKey(key)
      if (++n >= BUDGET_ROWS || (n % 32 === 0 && performance.now() > deadline)) break
    }
    if (this.dirty.size > 0 && this.flushing === 0) {
      this.flushing = requestAnimationFrame(() => {
        this.flushing = 0
        this.flush()
      })
    }
  }

  private fillKey(key: string): void {
    this.dirty.delete(key)
    const row = this.rows.get(key)
    const drone = this.store.drones.get(key)
    if (row !== undefined && drone !== undefined) this.fill(row, drone)
  }

  private fill(row: Row, drone: DroneView): void {
    setText(row.state, stateText(drone))
    setText(row.battery, batteryText(drone.batteryPct))
    setText(row.speed, drone.online ? speedText(drone.speedMps) : '—')
    setText(row.eta, etaText(this.store.deliveryOf(drone), drone))
    // Position on hover: for people, and for tests that read the fleet from the page.
    const p = drone.position
    const where =
      p === null
        ? 'no position yet'
        : `${p.lat.toFixed(6)}, ${p.lon.toFixed(6)}, ${p.altM.toFixed(0)} m`
    if (row.el.title !== where) row.el.title = where
    if (row.el.dataset.state !== drone.state) {
      row.el.dataset.state = drone.state
      row.state.style.color = STATE_COLOURS[drone.state]
    }
    const visible = this.matches(drone)
    if (row.el.hidden === visible) row.el.hidden = !visible
  }

  /** Rows sorted by fleet, then id in natural order (drone-2 before drone-10). */
  private order(): void {
    const keys = [...this.rows.keys()].sort((a, b) =>
      a.localeCompare(b, undefined, { numeric: true }),
    )
    this.list.append(...keys.map((k) => this.rows.get(k)!.el))
  }

  private matches(d: DroneView): boolean {
    if (this.stateFilter !== '' && d.state !== this.stateFilter) return false
    return this.search === '' || d.id.toLowerCase().includes(this.search)
  }
}

function createRow(drone: DroneView): Row {
  const el = document.createElement('div')
  el.className = 'drone-row'
  el.dataset.drone = keyOf(drone)
  el.tabIndex = 0
  const id = document.createElement('span')
  id.className = 'drone-id'
  id.textContent = drone.id
  id.title = `${drone.fleetId}/${drone.id}`
  const cells = ['state', 'battery', 'speed', 'eta'].map((name) => {
    const cell = document.createElement('span')
    cell.className = `drone-${name}`
    return cell
  }) as [HTMLElement, HTMLElement, HTMLElement, HTMLElement]
  el.append(id, ...cells)
  const [state, battery, speed, eta] = cells
  return { el, state, battery, speed, eta }
}

function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text
}
