import { batteryText, clockTime, etaShown, lostText, speedText, stateText } from '../format.ts'
import type { FleetStore } from '../store.ts'

/** The fields the card shows, in order, each with its heading. */
const FIELDS = [
  ['id', 'drone'],
  ['fleet', 'fleet'],
  ['state', 'state'],
  ['battery', 'battery'],
  ['altitude', 'altitude'],
  ['speed', 'speed'],
  ['heading', 'heading'],
  ['last-seen', 'last seen'],
  ['delivery', 'delivery'],
  ['eta', 'ETA'],
] as const
type Field = (typeof FIELDS)[number][0]

/**
 * The selected drone's details over the map (issue 18): id, fleet, state, battery,
 * altitude, speed, heading, when it was last heard, and its delivery with the ETA,
 * each a `[data-field]` cell. It follows the live stream while open (`update` on each
 * render that changed the drone) and closes with its button or Escape; closing
 * deselects the drone.
 */
export class DroneDetails {
  private readonly cells = new Map<Field, HTMLElement>()
  private key: string | null = null

  constructor(
    private readonly el: { panel: HTMLElement; title: HTMLElement; close: HTMLButtonElement },
    private readonly store: FleetStore,
    onClose: () => void,
  ) {
    const list = document.createElement('dl')
    for (const [field, heading] of FIELDS) {
      const dt = document.createElement('dt')
      dt.textContent = heading
      const dd = document.createElement('dd')
      dd.dataset.field = field
      this.cells.set(field, dd)
      list.append(dt, dd)
    }
    el.panel.append(list)
    el.close.addEventListener('click', onClose)
    document.addEventListener('keydown', (e) => {
      // Escape belongs to a field being edited first (the search box clears itself).
      const editing = (e.target as HTMLElement | null)?.closest('input, textarea, select')
      if (e.key === 'Escape' && this.key !== null && editing == null) onClose()
    })
  }

  /** The drone whose details show (null: the card closes). */
  show(key: string | null): void {
    this.key = key
    this.el.panel.hidden = key === null
    this.update()
  }

  get shown(): string | null {
    return this.key
  }

  /** Rewrites what changed; a drone that left the fleet reads as unknown. */
  update(): void {
    if (this.key === null) return
    const d = this.store.drones.get(this.key)
    this.el.panel.dataset.detailsFor = this.key
    this.el.title.textContent = d?.id ?? this.key
    if (d === undefined) {
      for (const cell of this.cells.values()) set(cell, '—')
      return
    }
    const delivery = this.store.deliveryOf(d)
    const eta = etaShown(delivery, d)
    const values: Record<Field, string> = {
      id: d.id,
      fleet: d.fleetId,
      state: stateText(d),
      battery: batteryText(d.batteryPct),
      altitude: d.position === null ? '—' : `${Math.round(d.position.altM)} m`,
      speed: speedText(d.speedMps),
      heading: d.headingDeg === null ? '—' : `${Math.round(d.headingDeg)}°`,
      'last-seen': clockTime(d.lastSeenAt),
      delivery: delivery === undefined ? 'none' : `${delivery.id} · ${delivery.status}`,
      eta:
        eta === undefined
          ? '—'
          : eta.kind === 'live'
            ? eta.eta
            : `${lostText(eta.lostAt)}${eta.lastEta === null ? '' : ` (last ETA ${eta.lastEta})`}`,
    }
    for (const [field, cell] of this.cells) set(cell, values[field])
    this.el.panel.dataset.state = d.state
  }
}

function set(cell: HTMLElement, text: string): void {
  if (cell.textContent !== text) cell.textContent = text
}
