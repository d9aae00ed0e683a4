import type { DroneView } from '@skyline/schemas'
import { STATE_COLOURS, batteryText, etaShown, lostText, speedText, stateText } from '../format.ts'
import type { EtaShown } from '../format.ts'
import type { Changes, FleetStore } from '../store.ts'

/** Height of a row, CSS px (fixed, so a row's place follows from its index). */
export const ROW_PX = 27
/**
 * Up to this many drones (after the filters) every row is in the page, so people and
 * tests can read the whole fleet as text. Past it only the rows in view (and a
 * margin) are: 10,000 rows in the page cost a 10,000-drone fleet 2/3 of its frame rate.
 */
export const ALL_ROWS_MAX = 1_000
/** Rows kept beyond the visible ones, above and below. */
const MARGIN_ROWS = 20

interface Row {
  key: string
  el: HTMLElement
  fleet: HTMLElement
  id: HTMLElement
  state: HTMLElement
  battery: HTMLElement
  speed: HTMLElement
  eta: HTMLElement
}

/**
 * The side panel's fleet list, sorted by fleet and id (drone-2 before drone-10),
 * filtered by search and state. With drones of more than one fleet it has a fleet
 * column, and the search looks at the fleet too (issue 16: ids are unique within a
 * fleet only, two fleets' `drone-1`s were two identical rows); with one fleet, neither.
 * Rows are updated in place, only the cells whose text changed, once per animation
 * frame. A big fleet is windowed: spacers stand for the rows out of view, so the
 * scroll bar is the whole fleet's.
 */
export class FleetList {
  /** Every drone key, sorted. */
  private order: string[] = []
  /** The keys the filters let through, in order. */
  private shown: string[] = []
  private readonly rows = new Map<string, Row>()
  private readonly spare: Row[] = []
  private readonly before: HTMLElement
  private readonly after: HTMLElement
  private search = ''
  private stateFilter = ''
  private selected: string | null = null
  /** Whether the drones are of more than one fleet: then the fleet is shown. */
  private many = false
  private scheduled = false
  private onSelect: (key: string) => void = () => undefined

  /**
   * `head`: the list's column headings, given the class `many-fleets` with the list
   * while they show a fleet column.
   */
  constructor(
    private readonly list: HTMLElement,
    private readonly store: FleetStore,
    private readonly head?: HTMLElement,
  ) {
    this.before = document.createElement('div')
    this.after = document.createElement('div')
    list.append(this.before, this.after)
    list.addEventListener('scroll', () => this.schedule(), { passive: true })
    list.addEventListener('click', (e) => {
      const key = (e.target as HTMLElement).closest<HTMLElement>('[data-drone]')?.dataset.drone
      if (key !== undefined) this.onSelect(key)
    })
    list.addEventListener('keydown', (e) => {
      const key = (e.target as HTMLElement).closest<HTMLElement>('[data-drone]')?.dataset.drone
      if ((e.key === 'Enter' || e.key === ' ') && key !== undefined) {
        e.preventDefault()
        this.onSelect(key)
      }
    })
  }

  /** Whether the drones are of more than one fleet, and so the list shows the fleet. */
  get manyFleets(): boolean {
    return this.many
  }

  onSelected(fn: (key: string) => void): void {
    this.onSelect = fn
  }

  filter(search: string, state: string): void {
    this.search = search.trim().toLowerCase()
    this.stateFilter = state
    this.refilter()
    this.render(new Set())
  }

  select(key: string | null): void {
    this.selected = key
    for (const row of this.rows.values()) row.el.classList.toggle('selected', row.key === key)
    const index = key === null ? -1 : this.shown.indexOf(key)
    if (index < 0) return
    // Into view if it is not: a windowed row may not exist yet.
    const top = index * ROW_PX
    const { scrollTop, clientHeight } = this.list
    if (top < scrollTop || top + ROW_PX > scrollTop + clientHeight) {
      this.list.scrollTop = Math.max(0, top - clientHeight / 2)
    }
    this.render(new Set())
  }

  update(changes: Changes): void {
    // The store removes drones only on a reset: more drones than rows means new ones.
    const added = this.store.drones.size !== this.order.length
    if (changes.reset || added) {
      this.order = [...this.store.drones.keys()].sort((a, b) =>
        a.localeCompare(b, undefined, { numeric: true }),
      )
      this.showFleets()
      this.refilter()
    } else if (this.stateFilter !== '') {
      // A drone whose state changed may enter or leave the filter.
      this.refilter()
    }
    this.render(changes.drones)
  }

  /** Shows or hides the fleet column, as the drones are of one fleet or more. */
  private showFleets(): void {
    const first = this.store.drones.values().next().value?.fleetId
    let many = false
    for (const d of this.store.drones.values()) {
      if (d.fleetId !== first) {
        many = true
        break
      }
    }
    if (many === this.many) return
    this.many = many
    this.list.classList.toggle('many-fleets', many)
    this.head?.classList.toggle('many-fleets', many)
    for (const row of this.rows.values()) {
      setText(row.fleet, many ? (this.store.drones.get(row.key)?.fleetId ?? '') : '')
    }
  }

  private refilter(): void {
    this.shown = this.order.filter((key) => {
      const d = this.store.drones.get(key)
      return d !== undefined && this.matches(d)
    })
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    requestAnimationFrame(() => {
      this.scheduled = false
      this.render(new Set())
    })
  }

  /** Shows the rows of the window, filling those that are new to it or changed. */
  private render(changed: Set<string>): void {
    const [start, end] = this.window()
    const wanted = this.shown.slice(start, end)
    const keep = new Set(wanted)
    for (const [key, row] of this.rows) {
      if (!keep.has(key)) {
        this.rows.delete(key)
        this.spare.push(row)
      }
    }
    let moved = false
    const els: HTMLElement[] = []
    for (const key of wanted) {
      let row = this.rows.get(key)
      if (row === undefined) {
        row = this.spare.pop() ?? createRow()
        row.key = key
        this.rows.set(key, row)
        this.fill(row, true)
        moved = true
      } else if (changed.has(key)) {
        this.fill(row, false)
      }
      els.push(row.el)
    }
    this.spare.length = Math.min(this.spare.length, 2 * MARGIN_ROWS)
    this.before.style.height = `${start * ROW_PX}px`
    this.after.style.height = `${(this.shown.length - end) * ROW_PX}px`
    const current = this.list.children
    const inPlace =
      !moved && current.length === els.length + 2 && els.every((el, i) => current[i + 1] === el)
    if (!inPlace) this.list.replaceChildren(this.before, ...els, this.after)
  }

  /** The range of `shown` in the page: all of it for a small fleet, else what is in view. */
  private window(): [number, number] {
    const n = this.shown.length
    if (n <= ALL_ROWS_MAX) return [0, n]
    const first = Math.floor(this.list.scrollTop / ROW_PX)
    const count = Math.ceil(this.list.clientHeight / ROW_PX) + 1
    return [Math.max(0, first - MARGIN_ROWS), Math.min(n, first + count + MARGIN_ROWS)]
  }

  private fill(row: Row, fresh: boolean): void {
    const drone = this.store.drones.get(row.key)
    if (drone === undefined) return
    if (fresh) {
      row.el.dataset.drone = row.key
      row.id.textContent = drone.id
      row.id.title = row.key
      setText(row.fleet, this.many ? drone.fleetId : '')
      row.el.classList.toggle('selected', row.key === this.selected)
    }
    setText(row.state, stateText(drone))
    setText(row.battery, batteryText(drone.batteryPct))
    setText(row.speed, drone.online ? speedText(drone.speedMps) : '—')
    fillEta(row.eta, etaShown(this.store.deliveryOf(drone), drone))
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
  }

  private matches(d: DroneView): boolean {
    if (this.stateFilter !== '' && d.state !== this.stateFilter) return false
    if (this.search === '') return true
    // With several fleets, `fleet/id` as the key spells it: `north` or `north/drone-1`.
    const text = this.many ? `${d.fleetId}/${d.id}` : d.id
    return text.toLowerCase().includes(this.search)
  }
}

function createRow(): Row {
  const el = document.createElement('div')
  el.className = 'drone-row'
  el.tabIndex = 0
  const names = ['fleet', 'id', 'state', 'battery', 'speed', 'eta'] as const
  const [fleet, id, state, battery, speed, eta] = names.map((name) => {
    const cell = document.createElement('span')
    cell.className = `drone-${name}`
    return cell
  }) as [HTMLElement, HTMLElement, HTMLElement, HTMLElement, HTMLElement, HTMLElement]
  el.append(fleet, id, state, battery, speed, eta)
  return { key: '', el, fleet, id, state, battery, speed, eta }
}

/**
 * The ETA cell: the live ETA as text; once the drone's signal is lost, `signal lost
 * hh:mm:ss` and the last ETA greyed (issue 15); empty without a delivery in flight.
 */
function fillEta(cell: HTMLElement, shown: EtaShown | undefined): void {
  if (shown?.kind !== 'lost') {
    cell.classList.remove('signal-lost')
    if (cell.title !== '') cell.title = ''
    setText(cell, shown?.eta ?? '')
    return
  }
  const lost = lostText(shown.lostAt)
  const text = shown.lastEta === null ? lost : `${lost} ${shown.lastEta}`
  if (cell.classList.contains('signal-lost') && cell.textContent === text) return
  cell.classList.add('signal-lost')
  cell.title = shown.lastEta === null ? lost : `${lost}; last ETA ${shown.lastEta}`
  const greyed = document.createElement('span')
  greyed.className = 'eta-greyed'
  greyed.textContent = shown.lastEta ?? ''
  cell.replaceChildren(lost, ...(shown.lastEta === null ? [] : [' ', greyed]))
}

function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text
}
