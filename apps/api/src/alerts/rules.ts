import type { AlertKind, AlertSeverity, AlertSubject, DeliveryStatus } from '@skyline/schemas'
import { droneClockAt } from '../delivery/promise.ts'

// The alert rules (docs/architecture.md "Alerts"): pure functions from what is true now
// to the alerts to open and to resolve. Level-triggered: each rule says which subjects'
// condition holds, and the difference with the alerts open decides; nothing is missed
// by a rule that ran late, or twice, or after a restart, since it judges the state, not
// the events. The clock and the thresholds come in as arguments.

/** An alert not resolved (open or acknowledged), as the rules see it. */
export interface OpenAlert {
  id: string
  fleetId: string
  kind: AlertKind
  subject: AlertSubject
}

/** An alert to open. */
export interface Opening {
  fleetId: string
  kind: AlertKind
  severity: AlertSeverity
  subject: AlertSubject
  facts: Record<string, unknown>
}

/** An alert to resolve, with what ended it (merged into its facts). */
export interface Resolution {
  id: string
  kind: AlertKind
  facts: Record<string, unknown>
}

export interface Decisions {
  open: Opening[]
  resolve: Resolution[]
}

export const noDecisions = (): Decisions => ({ open: [], resolve: [] })

/** The one spelling of a subject: `drone:d1/zone:z1`. One open alert per kind and this key. */
export function subjectKey(s: AlertSubject): string {
  return (
    [
      ['drone', s.droneId],
      ['station', s.stationId],
      ['delivery', s.deliveryId],
      ['zone', s.zoneId],
    ] as const
  )
    .filter(([, id]) => id !== undefined)
    .map(([name, id]) => `${name}:${id}`)
    .join('/')
}

/** Kind, fleet and subject: the key of the unique index. */
export const alertKey = (a: Pick<OpenAlert, 'fleetId' | 'kind' | 'subject'>): string =>
  `${a.kind}|${a.fleetId}|${subjectKey(a.subject)}`

/**
 * The level-triggered core: `holding` are the alerts whose condition holds now (keyed as
 * alertKey); those of `kinds` open and not holding are resolved with `ended(alert)`, those
 * holding and not open are opened.
 */
export function settle(
  kinds: readonly AlertKind[],
  holding: readonly Opening[],
  open: readonly OpenAlert[],
  ended: (alert: OpenAlert) => Record<string, unknown>,
): Decisions {
  const openByKey = new Map(
    open.filter((a) => kinds.includes(a.kind)).map((a) => [alertKey(a), a] as const),
  )
  const holdingKeys = new Set<string>()
  const decisions = noDecisions()
  for (const h of holding) {
    const key = alertKey(h)
    if (holdingKeys.has(key)) continue
    holdingKeys.add(key)
    if (!openByKey.has(key)) decisions.open.push(h)
  }
  for (const [key, alert] of openByKey)
    if (!holdingKeys.has(key))
      decisions.resolve.push({ id: alert.id, kind: alert.kind, facts: ended(alert) })
  return decisions
}

// -- what the ingest sees: a drone's latest point -------------------------------------------

/** A zone as the rules need it. */
export interface ZoneRef {
  id: string
  name: string
  kind: 'no_fly' | 'area'
  notifyOnEnterLeave: boolean
}

/** A drone's latest telemetry point of a batch, with the active zones holding it. */
export interface DronePoint {
  fleetId: string
  droneId: string
  /** The device's `ts`, epoch ms. */
  ts: number
  receivedAt: Date
  lat: number
  lon: number
  batteryPct: number
  deliveryId: string | null
  zones: ZoneRef[]
}

export interface BatteryRule {
  /** Below this a drone's battery is low, % (per fleet: ALERT_BATTERY_LOW_PCT…). */
  lowPct: (fleetId: string) => number
  /** An alert resolves once the battery is this much above the threshold, % (hysteresis). */
  clearMarginPct: number
}

/**
 * `battery_low` and `geofence_breach` from the drones' latest points (the ingest's batch):
 * a battery below its fleet's threshold (and, once open, until it is back above it by the
 * margin); a position inside an active no-fly zone, or an area that asks to be told of
 * entering and leaving (one alert per drone and zone: opened on entering, resolved on
 * leaving). `open` may hold any alerts: those of the drones in `points` are judged.
 */
export function judgePoints(
  points: readonly DronePoint[],
  open: readonly OpenAlert[],
  battery: BatteryRule,
): Decisions {
  const holding: Opening[] = []
  const openKeys = new Set(open.map(alertKey))
  for (const p of points) {
    const subject = { droneId: p.droneId }
    const where = { lat: p.lat, lon: p.lon, ts: p.ts, receivedAt: p.receivedAt.toISOString() }
    const thresholdPct = battery.lowPct(p.fleetId)
    const lowOpen = openKeys.has(alertKey({ fleetId: p.fleetId, kind: 'battery_low', subject }))
    if (
      p.batteryPct < thresholdPct ||
      (lowOpen && p.batteryPct < thresholdPct + battery.clearMarginPct)
    )
      holding.push({
        fleetId: p.fleetId,
        kind: 'battery_low',
        severity: p.batteryPct < thresholdPct / 2 ? 'critical' : 'warning',
        subject,
        facts: { batteryPct: p.batteryPct, thresholdPct, deliveryId: p.deliveryId, ...where },
      })
    for (const z of p.zones) {
      if (z.kind === 'area' && !z.notifyOnEnterLeave) continue
      holding.push({
        fleetId: p.fleetId,
        kind: 'geofence_breach',
        // Inside a no-fly zone is a breach; inside an area only a notice of its entering.
        severity: z.kind === 'no_fly' ? 'critical' : 'info',
        subject: { droneId: p.droneId, zoneId: z.id },
        facts: { zoneName: z.name, zoneKind: z.kind, deliveryId: p.deliveryId, ...where },
      })
    }
  }
  const byPoint = new Map(points.map((p) => [`${p.fleetId}/${p.droneId}`, p]))
  const judged = open.filter((a) => byPoint.has(`${a.fleetId}/${a.subject.droneId}`))
  return settle(['battery_low', 'geofence_breach'], holding, judged, (a) => {
    const p = byPoint.get(`${a.fleetId}/${a.subject.droneId}`)
    const where = p && { lat: p.lat, lon: p.lon, ts: p.ts, receivedAt: p.receivedAt.toISOString() }
    return a.kind === 'battery_low'
      ? { resolution: 'battery_recovered', lastBatteryPct: p?.batteryPct, ...where }
      : { resolution: 'left_zone', ...where }
  })
}

// -- what the sweep reads: drones with deliveries, stations, blocked routes -------------------

/** Delivery statuses in which a drone carries it out (assigned to arrived). */
export const IN_FLIGHT: readonly DeliveryStatus[] = [
  'assigned',
  'to_pickup',
  'picked_up',
  'en_route',
  'arrived',
]

/** A delivery and its drone: in flight, or named by an open `drone_lost` alert. */
export interface DroneOfDelivery {
  fleetId: string
  deliveryId: string
  deliveryStatus: DeliveryStatus
  /** The delivery's drone now (null once given back). */
  deliveryDroneId: string | null
  droneId: string
  /** Null: the drone is not known. */
  online: boolean | null
  lastSeenAt: Date | null
  offlineReason: string | null
  /** When `online` last changed (the api's clock: the will's or the status's arrival). */
  onlineChangedAt: Date | null
}

/**
 * Whether a device offline at `now` has been so for the grace (ALERT_OFFLINE_GRACE_S): a
 * connection dropped and back within it (a network blip, the simulator's chaos) opens no
 * alert. Since when not known: as long as can be.
 */
export function offlinePastGrace(
  online: boolean | null,
  onlineChangedAt: Date | null,
  now: Date,
  graceS: number,
): boolean {
  if (online !== false) return false
  return onlineChangedAt === null || now.getTime() - onlineChangedAt.getTime() >= graceS * 1000
}

export interface LostRule {
  now: Date
  /** A drone not heard this long is lost, s (ALERT_STALE_S). */
  staleAfterS: number
  /** An offline drone is lost once it has been offline this long, s (ALERT_OFFLINE_GRACE_S). */
  offlineGraceS: number
  /**
   * Since when the api has heard the broker without a break: a drone's silence over a
   * time nobody listened is not its own (after a restart of the api).
   */
  listeningSince: Date | undefined
}

/**
 * `drone_lost`: a drone with a delivery in flight is offline (for ALERT_OFFLINE_GRACE_S),
 * or has not been heard for ALERT_STALE_S. It stays open while the drone is not heard again and the delivery is
 * still its own (in flight, or failed without it); it resolves when the drone is heard,
 * or the delivery is finished otherwise or given to another drone.
 */
export function judgeLost(
  rows: readonly DroneOfDelivery[],
  open: readonly OpenAlert[],
  rule: LostRule,
): Decisions {
  const cutoff = rule.now.getTime() - rule.staleAfterS * 1000
  const canJudgeSilence =
    rule.listeningSince !== undefined && rule.listeningSince.getTime() <= cutoff
  const lost = (r: DroneOfDelivery) =>
    offlinePastGrace(r.online, r.onlineChangedAt, rule.now, rule.offlineGraceS) ||
    (canJudgeSilence && (r.lastSeenAt === null || r.lastSeenAt.getTime() < cutoff))
  const openKeys = new Set(open.map(alertKey))
  const holding: Opening[] = []
  const why = new Map<string, Record<string, unknown>>()
  for (const r of rows) {
    const subject = { droneId: r.droneId, deliveryId: r.deliveryId }
    const opening: Opening = {
      fleetId: r.fleetId,
      kind: 'drone_lost',
      severity: 'critical',
      subject,
      facts: {
        online: r.online,
        lastSeenAt: r.lastSeenAt?.toISOString() ?? null,
        offlineReason: r.offlineReason,
        deliveryStatus: r.deliveryStatus,
        staleAfterS: rule.staleAfterS,
      },
    }
    const key = alertKey(opening)
    const itsOwn = r.deliveryDroneId === r.droneId
    const inFlight = itsOwn && IN_FLIGHT.includes(r.deliveryStatus)
    const stillAtStake = inFlight || (itsOwn && r.deliveryStatus === 'failed')
    if (lost(r) && (inFlight || (openKeys.has(key) && stillAtStake))) holding.push(opening)
    else
      why.set(key, {
        resolution: lost(r) ? 'delivery_settled' : 'drone_heard',
        deliveryStatus: r.deliveryStatus,
        lastSeenAt: r.lastSeenAt?.toISOString() ?? null,
      })
  }
  return settle(
    ['drone_lost'],
    holding,
    open,
    (a) => why.get(alertKey(a)) ?? { resolution: 'drone_heard' },
  )
}

/** A station's presence. */
export interface StationPresence {
  fleetId: string
  stationId: string
  online: boolean
  onlineChangedAt: Date | null
}

/**
 * `station_offline`: a station is offline (its last will, or its own status) for
 * ALERT_OFFLINE_GRACE_S. `stations` are every station offline now: an open alert of any
 * other is resolved; one of a station offline within the grace is left open.
 */
export function judgeStations(
  stations: readonly StationPresence[],
  open: readonly OpenAlert[],
  rule: { now: Date; offlineGraceS: number },
): Decisions {
  const openIds = new Set(
    open
      .filter((a) => a.kind === 'station_offline')
      .map((a) => `${a.fleetId}/${a.subject.stationId}`),
  )
  const holding = stations
    .filter(
      (s) =>
        openIds.has(`${s.fleetId}/${s.stationId}`) ||
        offlinePastGrace(s.online, s.onlineChangedAt, rule.now, rule.offlineGraceS),
    )
    .map((s): Opening => ({
      fleetId: s.fleetId,
      kind: 'station_offline',
      severity: 'warning',
      subject: { stationId: s.stationId },
      facts: { offlineSince: s.onlineChangedAt?.toISOString() ?? null },
    }))
  return settle(['station_offline'], holding, open, () => ({ resolution: 'station_online' }))
}

/** A delivery failed `route_blocked`, and the no-fly zones its route crosses now. */
export interface BlockedRoute {
  fleetId: string
  deliveryId: string
  pickupStationId: string
  dropoffStationId: string
  failedAt: Date | null
  /** The active no-fly zones the pick-up → drop-off leg crosses now. */
  crossing: { id: string; name: string }[]
  /** An alert of it was opened before (resolved or not): it is not opened again. */
  alerted: boolean
}

/**
 * `route_blocked`: the dispatcher failed a delivery whose route crosses an active no-fly
 * zone. Opened once per delivery, with the zones; resolved by itself when the route no
 * longer crosses one (the zone deleted, moved, or out of its window): it could be
 * requested again.
 */
export function judgeRoutes(
  routes: readonly BlockedRoute[],
  open: readonly OpenAlert[],
): Decisions {
  const openIds = new Set(
    open.filter((a) => a.kind === 'route_blocked').map((a) => a.subject.deliveryId),
  )
  const holding = routes
    .filter((r) => r.crossing.length > 0 && (openIds.has(r.deliveryId) || !r.alerted))
    .map((r): Opening => ({
      fleetId: r.fleetId,
      kind: 'route_blocked',
      severity: 'warning',
      subject: { deliveryId: r.deliveryId },
      facts: {
        zones: r.crossing,
        pickupStationId: r.pickupStationId,
        dropoffStationId: r.dropoffStationId,
        failedAt: r.failedAt?.toISOString() ?? null,
      },
    }))
  // Open alerts of deliveries not among `routes` are left alone (not read this round).
  const known = new Set(routes.map((r) => r.deliveryId))
  return settle(
    ['route_blocked'],
    holding,
    open.filter((a) => a.kind === 'route_blocked' && known.has(a.subject.deliveryId ?? '')),
    () => ({ resolution: 'route_clear' }),
  )
}

/** A delivery with its promise: in flight, or named by an open `delivery_late` alert. */
export interface PromisedDelivery {
  fleetId: string
  deliveryId: string
  status: DeliveryStatus
  droneId: string | null
  /** The ETA promised at assignment, and the ETA now, on the drone's clock (null: none). */
  promisedAt: Date | null
  etaAt: Date | null
  /** Its arrival over the drop-off (the event's `ts`): an `arrived` one is late by it. */
  arrivedAt: Date | null
  /** Its drone's newest point's `ts`, and when the api last heard it: the drone's clock. */
  positionAt: Date | null
  lastSeenAt: Date | null
}

export interface LateRule {
  now: Date
  /** Later than the promise by more than this is late, s (ALERT_LATE_MARGIN_S). */
  marginS: number
}

/**
 * How late a delivery in flight stands now, s (negative: ahead of its promise): an
 * arrived one by its arrival; otherwise by the later of its ETA and the drone's clock,
 * since it cannot arrive before now (an ETA left in the past, or none yet, is no excuse).
 */
export function latenessS(d: PromisedDelivery, now: Date): number | undefined {
  if (d.promisedAt === null) return undefined
  const clock = droneClockAt(now, d.positionAt, d.lastSeenAt)
  const expected =
    d.status === 'arrived' && d.arrivedAt !== null
      ? d.arrivedAt.getTime()
      : Math.max(d.etaAt?.getTime() ?? clock, clock)
  return (expected - d.promisedAt.getTime()) / 1000
}

/** Why a `delivery_late` alert of a delivery no longer in flight resolves. */
const SETTLED: Partial<Record<DeliveryStatus, string>> = {
  completed: 'delivered',
  failed: 'delivery_failed',
  cancelled: 'delivery_cancelled',
  requested: 'delivery_requeued',
}

/**
 * `delivery_late`: a delivery in flight stands later than the time promised at its
 * assignment by more than ALERT_LATE_MARGIN_S: its ETA has slipped past the promise (a
 * slip is measured against the promise: one alert per delivery, not one per jump of the
 * ETA), or it is still in flight past the promise (judged on the drone's clock, on which
 * the promise and the ETA are). Once open it holds until it is back within half the margin
 * (`back_on_time`: no flapping on an ETA that wavers around the margin), or the delivery
 * completes, fails, is cancelled or is given back to the queue. `rows` are every
 * delivery in flight with a promise, and those of open alerts.
 */
export function judgeLate(
  rows: readonly PromisedDelivery[],
  open: readonly OpenAlert[],
  rule: LateRule,
): Decisions {
  const openIds = new Set(
    open.filter((a) => a.kind === 'delivery_late').map((a) => a.subject.deliveryId),
  )
  const holding: Opening[] = []
  const why = new Map<string, Record<string, unknown>>()
  for (const d of rows) {
    const lateS = latenessS(d, rule.now)
    const facts = {
      promisedAt: d.promisedAt?.toISOString() ?? null,
      etaAt: d.etaAt?.toISOString() ?? null,
      latenessS: lateS === undefined ? null : Math.round(lateS),
      marginS: rule.marginS,
      deliveryStatus: d.status,
      droneId: d.droneId,
    }
    const bar = openIds.has(d.deliveryId) ? rule.marginS / 2 : rule.marginS
    if (IN_FLIGHT.includes(d.status) && lateS !== undefined && lateS > bar)
      holding.push({
        fleetId: d.fleetId,
        kind: 'delivery_late',
        severity: 'warning',
        subject: { deliveryId: d.deliveryId },
        facts,
      })
    else
      why.set(d.deliveryId, {
        resolution: SETTLED[d.status] ?? 'back_on_time',
        deliveryStatus: d.status,
        latenessS: facts.latenessS,
      })
  }
  return settle(
    ['delivery_late'],
    holding,
    open,
    (a) => why.get(a.subject.deliveryId ?? '') ?? { resolution: 'delivery_gone' },
  )
}

/** Decisions of several rules together. */
export function merge(...all: Decisions[]): Decisions {
  return { open: all.flatMap((d) => d.open), resolve: all.flatMap((d) => d.resolve) }
}
