import type {
  Alert,
  DeliveryStatus,
  DeliveryView,
  DroneChange,
  DroneView,
  FleetView,
  LiveFrame,
  StationView,
} from '@skyline/schemas'
import { FINISHED_STATUSES } from '@skyline/schemas/constants'

// The page's copy of the fleet: a snapshot, then the live stream's changes merged in.
// No DOM here: the map and the panel read it and redraw what `apply` says changed.

/** Statuses after which a delivery leaves the map (ARCHITECTURE.md "Delivery lifecycle"). */
const FINISHED: ReadonlySet<DeliveryStatus> = new Set(FINISHED_STATUSES)

/** Drones, stations and deliveries are keyed by fleet and id: ids are unique within a fleet. */
export const keyOf = (x: { fleetId: string; id: string }): string => `${x.fleetId}/${x.id}`

/** What an update changed, for the views to redraw no more than that. */
export interface Changes {
  /** Everything was replaced (a snapshot). */
  reset: boolean
  /** Keys of drones that changed or appeared. */
  drones: Set<string>
  stations: boolean
  deliveries: boolean
  /** A delivery appeared or changed status (not only its ETA). */
  deliveryStatuses: boolean
  /** The alerts not resolved changed. */
  alerts: boolean
  /** Alerts opened in a `changes` frame and not known before: the page announces them. */
  opened: Alert[]
}

/** Open alerts first, then acknowledged ones; newest first within each. */
const STATE_ORDER: Record<Alert['state'], number> = { open: 0, acknowledged: 1, resolved: 2 }

export class FleetStore {
  readonly drones = new Map<string, DroneView>()
  readonly stations = new Map<string, StationView>()
  /** Unfinished deliveries by id; a delivery is dropped when it finishes. */
  readonly deliveries = new Map<string, DeliveryView>()
  /** Unfinished delivery id by drone key. */
  private readonly deliveryByDrone = new Map<string, string>()
  /** Alerts not resolved, by id (the live stream's; a resolved one is dropped). */
  readonly alerts = new Map<string, Alert>()
  /** Server time of the last snapshot or frame. */
  at: string | null = null

  apply(frame: LiveFrame): Changes {
    switch (frame.type) {
      case 'snapshot':
        return this.applySnapshot(frame)
      case 'changes':
        return this.applyChanges(frame)
      case 'error':
        return {
          reset: false,
          drones: new Set(),
          stations: false,
          deliveries: false,
          deliveryStatuses: false,
          alerts: false,
          opened: [],
        }
    }
  }

  /** Replaces everything: the first paint, and again after every reconnection. */
  applySnapshot(s: FleetView & { alerts?: Alert[] }): Changes {
    this.drones.clear()
    this.stations.clear()
    this.deliveries.clear()
    this.deliveryByDrone.clear()
    for (const d of s.drones) this.drones.set(keyOf(d), d)
    for (const st of s.stations) this.stations.set(keyOf(st), st)
    for (const d of s.deliveries) this.putDelivery(d)
    // GET /api/fleet carries no alerts: the live stream's snapshot does.
    if (s.alerts !== undefined) {
      this.alerts.clear()
      for (const a of s.alerts) this.putAlert(a)
    }
    this.at = s.at
    return {
      reset: true,
      drones: new Set(this.drones.keys()),
      stations: true,
      deliveries: true,
      deliveryStatuses: true,
      alerts: true,
      opened: [],
    }
  }

  applyChanges(frame: Extract<LiveFrame, { type: 'changes' }>): Changes {
    const changed = new Set<string>()
    let statuses = false
    for (const change of frame.drones) {
      const key = keyOf(change)
      const current = this.drones.get(key) ?? blankDrone(change)
      const next = { ...current, ...change }
      // A drone that comes back online leaves its offline details behind.
      if (change.online === true) next.offlineReason = null
      // The api's changes carry lastSeenAt with telemetry and online statuses; from a
      // server that sends none, a drone whose telemetry or online status is in this frame
      // was heard since the last frame, so the frame's time stands for it. A last will is
      // the broker speaking, not the drone: it does not count as heard (issue 15: "signal
      // lost hh:mm:ss" is when the drone was last heard).
      if (
        change.lastSeenAt === undefined &&
        (change.positionAt !== undefined || change.online === true)
      ) {
        next.lastSeenAt = frame.at
      }
      this.drones.set(key, next)
      changed.add(key)
    }
    for (const st of frame.stations) this.stations.set(keyOf(st), st)
    for (const d of frame.deliveries) {
      if (d.droneId !== null) changed.add(`${d.fleetId}/${d.droneId}`)
      const before = this.deliveries.get(d.id)
      if (before?.status !== d.status) statuses = true
      if (before?.droneId != null && before.droneId !== d.droneId) {
        changed.add(`${before.fleetId}/${before.droneId}`)
      }
      this.putDelivery(d)
    }
    const opened: Alert[] = []
    // Read as optional: a stream from before the alerts (and the tests' own) has none.
    const alerts: readonly Alert[] | undefined = frame.alerts
    for (const a of alerts ?? []) {
      if (a.state === 'open' && !this.alerts.has(a.id)) opened.push(a)
      this.putAlert(a)
    }
    this.at = frame.at
    return {
      reset: false,
      drones: changed,
      stations: frame.stations.length > 0,
      deliveries: frame.deliveries.length > 0,
      deliveryStatuses: statuses,
      alerts: (alerts?.length ?? 0) > 0,
      opened,
    }
  }

  /** The alerts not resolved: open ones first, then acknowledged; newest first in each. */
  alertList(): Alert[] {
    return [...this.alerts.values()].sort(
      (a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || b.openedAt.localeCompare(a.openedAt),
    )
  }

  /** The unfinished delivery a drone is flying, if any. */
  deliveryOf(drone: { fleetId: string; id: string }): DeliveryView | undefined {
    const id = this.deliveryByDrone.get(keyOf(drone))
    return id === undefined ? undefined : this.deliveries.get(id)
  }

  station(fleetId: string, id: string): StationView | undefined {
    return this.stations.get(`${fleetId}/${id}`)
  }

  /** Number of drones in each state. */
  countByState(): Map<string, number> {
    const counts = new Map<string, number>()
    for (const d of this.drones.values()) counts.set(d.state, (counts.get(d.state) ?? 0) + 1)
    return counts
  }

  /**
   * Keeps an alert's newest version; a resolved one leaves. Versions of one alert may come
   * out of order (ARCHITECTURE.md "Alerts"): `ts`, then the state's order, say which is
   * newer.
   */
  private putAlert(a: Alert): void {
    const current = this.alerts.get(a.id)
    if (
      current !== undefined &&
      (current.ts > a.ts ||
        (current.ts === a.ts && STATE_ORDER[current.state] > STATE_ORDER[a.state]))
    )
      return
    if (a.state === 'resolved') this.alerts.delete(a.id)
    else this.alerts.set(a.id, a)
  }

  private putDelivery(d: DeliveryView): void {
    const previous = this.deliveries.get(d.id)
    if (previous?.droneId != null) {
      const key = `${previous.fleetId}/${previous.droneId}`
      if (this.deliveryByDrone.get(key) === d.id) this.deliveryByDrone.delete(key)
    }
    if (FINISHED.has(d.status)) {
      this.deliveries.delete(d.id)
      return
    }
    this.deliveries.set(d.id, d)
    if (d.droneId !== null) this.deliveryByDrone.set(`${d.fleetId}/${d.droneId}`, d.id)
  }
}

/** A drone first heard of in a change frame (it joined after the snapshot). */
function blankDrone(change: DroneChange): DroneView {
  return {
    id: change.id,
    fleetId: change.fleetId,
    online: true,
    state: 'idle',
    stationId: null,
    model: null,
    firmware: null,
    position: null,
    speedMps: null,
    headingDeg: null,
    batteryPct: null,
    deliveryId: null,
    lastSeq: null,
    positionAt: null,
    lastSeenAt: null,
    onlineChangedAt: null,
    offlineReason: null,
  }
}
