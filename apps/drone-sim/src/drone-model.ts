import type { DroneEventType, DroneState } from '@skyline/schemas'
import {
  BATTERY,
  DEFAULT_FLIGHT,
  drainPct,
  requiredPct,
  startFlight,
  stepFlight,
} from './flight.ts'
import type { Flight, FlightParams, Wind } from './flight.ts'
import { distanceM } from './geo.ts'
import type { LatLon } from './geo.ts'

/** A station as a drone sees it: where to land. */
export interface Stop extends LatLon {
  stationId: string
}

/** Something the drone reports, at simulated time `atMs`. */
export interface ModelEvent {
  type: DroneEventType
  atMs: number
  deliveryId?: string
  stationId?: string
  detail?: string
}

export type Mission =
  | { kind: 'delivery'; deliveryId: string; pickup: Stop; dropoff: Stop; leg: 'pickup' | 'dropoff' }
  | { kind: 'return'; to: Stop }
  | { kind: 'patrol'; to: Stop }

/**
 * One drone's behaviour, without any networking: where it is, what it is doing, its
 * battery, and the events its missions produce. Time is simulated epoch ms, passed in,
 * so tests drive it directly.
 */
export class DroneModel {
  pos: LatLon
  altM = 0
  speedMps = 0
  headingDeg = 0
  batteryPct: number
  dockedAt: string | undefined
  mission: Mission | undefined
  faulted = false
  readonly params: FlightParams
  private flight: Flight | undefined
  private lastMs: number
  private lowReported = false

  constructor(
    readonly id: string,
    home: Stop,
    cruiseMps: number,
    batteryPct: number,
    nowMs: number,
  ) {
    this.pos = { lat: home.lat, lon: home.lon }
    this.dockedAt = home.stationId
    this.batteryPct = batteryPct
    this.params = { ...DEFAULT_FLIGHT, cruiseMps }
    this.lastMs = nowMs
  }

  get state(): DroneState {
    if (this.faulted) return 'fault'
    const m = this.mission
    if (m === undefined || this.flight === undefined)
      return this.batteryPct < 100 ? 'charging' : 'idle'
    if (this.flight.phase === 'descent') return 'landing'
    if (m.kind === 'delivery') return m.leg === 'pickup' ? 'to_pickup' : 'en_route'
    return m.kind === 'return' ? 'returning' : 'en_route'
  }

  get busy(): boolean {
    return this.faulted || this.mission?.kind === 'delivery'
  }

  get deliveryId(): string | undefined {
    return this.mission?.kind === 'delivery' ? this.mission.deliveryId : undefined
  }

  /** Runs the drone forward to `nowMs` (simulated epoch ms). */
  advance(nowMs: number, wind: Wind): ModelEvent[] {
    const events: ModelEvent[] = []
    let dtS = Math.max(0, (nowMs - this.lastMs) / 1000)
    this.lastMs = Math.max(this.lastMs, nowMs)
    while (dtS > 0 && this.flight !== undefined && !this.faulted) {
      const f = this.flight
      const flownBefore = f.flownM
      const left = stepFlight(f, dtS, this.params, wind)
      this.drain(dtS - left, f.flownM - flownBefore, nowMs - left * 1000, events)
      this.pos = f.pos
      this.altM = f.altM
      this.speedMps = f.speedMps
      this.headingDeg = f.headingDeg
      if (this.faulted || f.phase !== 'landed') break
      this.landed(nowMs - left * 1000, events)
      dtS = left
    }
    if (this.flight === undefined && !this.faulted && this.batteryPct < 100) {
      this.batteryPct = Math.min(100, this.batteryPct + dtS * BATTERY.chargePctPerS)
      if (this.batteryPct >= BATTERY.lowPct + 10) this.lowReported = false
    }
    return events
  }

  /** A delivery.assign command: accepted, or failed with the reason. */
  assign(deliveryId: string, pickup: Stop, dropoff: Stop, nowMs: number): ModelEvent[] {
    const refuse = (detail: string): ModelEvent[] => [
      { type: 'delivery.failed', atMs: nowMs, deliveryId, detail },
    ]
    if (this.busy)
      return refuse(this.faulted ? 'drone_fault' : `busy with delivery ${this.deliveryId}`)
    const toPickup = this.dockedAt === pickup.stationId ? 0 : distanceM(this.pos, pickup)
    const needed =
      (toPickup > 0 ? requiredPct(toPickup, this.params) : 0) +
      requiredPct(distanceM(pickup, dropoff), this.params)
    if (needed + BATTERY.reservePct > this.batteryPct) {
      return refuse(
        `insufficient_battery: needs ${Math.ceil(needed + BATTERY.reservePct)}%, has ${Math.floor(this.batteryPct)}%`,
      )
    }
    const events: ModelEvent[] = [
      { type: 'delivery.accepted', atMs: nowMs, deliveryId, stationId: pickup.stationId },
    ]
    this.mission = { kind: 'delivery', deliveryId, pickup, dropoff, leg: 'pickup' }
    if (toPickup === 0 && this.flight === undefined) this.pickUp(nowMs, events)
    else this.fly(pickup)
    return events
  }

  /** Stops a delivery (the one given, or any) and flies to `base`. */
  cancel(deliveryId: string | undefined, base: Stop, nowMs: number): ModelEvent[] {
    const current = this.deliveryId
    if (current === undefined || (deliveryId !== undefined && deliveryId !== current)) return []
    this.mission = undefined
    this.goTo({ kind: 'return', to: base })
    return [{ type: 'delivery.failed', atMs: nowMs, deliveryId: current, detail: 'cancelled' }]
  }

  /** Flies to `base`, abandoning a delivery in progress. */
  returnTo(base: Stop, nowMs: number): ModelEvent[] {
    const events = this.cancel(undefined, base, nowMs)
    if (events.length === 0) this.goTo({ kind: 'return', to: base })
    return events
  }

  /** With no dispatcher around: fly to another station on its own. */
  patrolTo(stop: Stop): void {
    if (!this.busy) this.goTo({ kind: 'patrol', to: stop })
  }

  private goTo(mission: Exclude<Mission, { kind: 'delivery' }>): void {
    if (this.dockedAt === mission.to.stationId && this.flight === undefined) return
    this.mission = mission
    this.fly(mission.to)
  }

  private fly(to: Stop): void {
    this.flight = startFlight(this.pos, to, this.altM, this.params)
    this.dockedAt = undefined
  }

  private landed(atMs: number, events: ModelEvent[]): void {
    const m = this.mission
    this.flight = undefined
    this.speedMps = 0
    if (m === undefined) return
    if (m.kind === 'delivery' && m.leg === 'pickup') {
      this.dockedAt = m.pickup.stationId
      this.pickUp(atMs, events)
      return
    }
    if (m.kind === 'delivery') {
      const { deliveryId, dropoff } = m
      events.push({ type: 'delivery.arrived', atMs, deliveryId, stationId: dropoff.stationId })
      events.push({ type: 'delivery.completed', atMs, deliveryId, stationId: dropoff.stationId })
    }
    this.dockedAt = m.kind === 'delivery' ? m.dropoff.stationId : m.to.stationId
    this.mission = undefined
  }

  private pickUp(atMs: number, events: ModelEvent[]): void {
    const m = this.mission
    if (m?.kind !== 'delivery') return
    events.push({
      type: 'delivery.picked_up',
      atMs,
      deliveryId: m.deliveryId,
      stationId: m.pickup.stationId,
    })
    m.leg = 'dropoff'
    this.fly(m.dropoff)
    events.push({
      type: 'delivery.departed',
      atMs,
      deliveryId: m.deliveryId,
      stationId: m.pickup.stationId,
    })
  }

  private drain(airborneS: number, flownM: number, atMs: number, events: ModelEvent[]): void {
    this.batteryPct = Math.max(0, this.batteryPct - drainPct(airborneS, flownM))
    if (this.batteryPct < BATTERY.lowPct && !this.lowReported) {
      this.lowReported = true
      events.push({
        type: 'battery.low',
        atMs,
        deliveryId: this.deliveryId,
        detail: `${Math.floor(this.batteryPct)}%`,
      })
    }
    if (this.batteryPct === 0) {
      // Out of power: it comes down where it is and needs an operator.
      this.faulted = true
      this.flight = undefined
      this.altM = 0
      this.speedMps = 0
      const deliveryId = this.deliveryId
      if (deliveryId !== undefined)
        events.push({ type: 'delivery.failed', atMs, deliveryId, detail: 'battery_depleted' })
      this.mission = undefined
    }
  }
}
