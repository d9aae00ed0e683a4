import type { GeofenceIndex } from '../geofence/index.ts'
import type { IngestItem } from '../ingest/items.ts'
import type { AlertFacts } from './facts.ts'
import type { AlertRepository } from './repository.ts'
import { judgeLate, judgeLost, judgePoints, judgeRoutes, judgeStations, merge } from './rules.ts'
import type { BatteryRule, Decisions, DronePoint, OpenAlert } from './rules.ts'
import type { AlertService } from './service.ts'

/** A failed route is looked at for its alert this long after its failure, ms (a day). */
const ROUTE_LOOKBACK_MS = 86_400_000

export interface EvaluatorOptions {
  battery: BatteryRule
  /** ALERT_STALE_S. */
  staleAfterS: number
  /** ALERT_OFFLINE_GRACE_S. */
  offlineGraceS: number
  /** ALERT_LATE_MARGIN_S. */
  lateMarginS: number
  /** How often the sweep runs, ms (ALERT_SWEEP_MS). */
  sweepMs: number
  /** Since when the ingest has heard the broker without a break (mqtt.listeningSince). */
  listeningSince: () => Date | undefined
  now?: () => Date
  log: { warn(obj: object, msg: string): void }
}

/**
 * The leader's evaluation of the rules (rules.ts), one round at a time:
 *
 * - after each ingest batch commits (`committed`): each drone's latest point, and every
 *   zone any of its points was in (the geofence index's `breachesIn`, over every
 *   telemetry message, so a breach between two points of a batch is not missed): its
 *   `battery_low` and `geofence_breach`. The batch's work here is a map per drone; the
 *   rules run off the ingest's path, on the next round, against the alerts held open in
 *   memory, and write only when something changes;
 * - every ALERT_SWEEP_MS and when asked (`sweepSoon`): `drone_lost`, `station_offline`,
 *   `route_blocked` and `delivery_late`, judged on the database's state.
 *
 * It holds the alerts not resolved in memory while it leads (read at start): only the
 * leader opens and resolves (an acknowledgement changes neither).
 */
export class AlertEvaluator {
  private readonly open = new Map<string, OpenAlert>()
  /** Alert ids by `fleet/drone`, for the points' rules. */
  private readonly byDrone = new Map<string, Set<string>>()
  private pending = new Map<string, DronePoint>()
  private rounds: Promise<void> = Promise.resolve()
  private pointsQueued = false
  private sweepQueued = false
  private running = false
  private timer: NodeJS.Timeout | undefined
  private readonly now: () => Date

  constructor(
    private readonly service: AlertService,
    private readonly repository: AlertRepository,
    private readonly facts: AlertFacts,
    private readonly zones: GeofenceIndex,
    private readonly o: EvaluatorOptions,
  ) {
    this.now = o.now ?? (() => new Date())
  }

  async start(): Promise<void> {
    await this.reload()
    this.running = true
    this.timer = setInterval(() => this.sweepSoon(), this.o.sweepMs)
    this.sweepSoon()
  }

  /** Stops; `lost`: the lead was taken away, what is pending is forgotten. */
  async stop(): Promise<void> {
    this.running = false
    clearInterval(this.timer)
    this.pending = new Map()
    await this.rounds
  }

  /** A committed ingest batch (called on the ingest's path: a map per drone, no I/O). */
  committed(items: readonly IngestItem[]): void {
    if (!this.running) return
    const zonesOf = new Map<string, DronePoint['zones']>()
    for (const hit of this.zones.breachesIn(items)) {
      const key = `${hit.fleetId}/${hit.droneId}`
      const list = zonesOf.get(key) ?? []
      for (const z of hit.zones) if (!list.some((x) => x.id === z.id)) list.push(z)
      zonesOf.set(key, list)
    }
    for (const item of items) {
      if (item.kind !== 'telemetry') continue
      const key = `${item.fleetId}/${item.droneId}`
      const before = this.pending.get(key)
      // Every zone any point was in since the last round: a breach between two points counts.
      const zones = dedupe([...(before?.zones ?? []), ...(zonesOf.get(key) ?? [])])
      const newer = before === undefined || item.msg.ts >= before.ts
      const { msg } = item
      this.pending.set(
        key,
        newer
          ? {
              fleetId: item.fleetId,
              droneId: item.droneId,
              ts: msg.ts,
              receivedAt: item.receivedAt,
              lat: msg.lat,
              lon: msg.lon,
              batteryPct: msg.batteryPct,
              deliveryId: msg.deliveryId ?? null,
              zones,
            }
          : { ...before, zones },
      )
    }
    if (this.pending.size > 0 && !this.pointsQueued) {
      this.pointsQueued = true
      this.enqueue(async () => {
        this.pointsQueued = false
        const points = [...this.pending.values()]
        this.pending = new Map()
        const open = points.flatMap((p) => this.alertsOfDrone(p.fleetId, p.droneId))
        await this.apply(judgePoints(points, open, this.o.battery))
      })
    }
  }

  /** A sweep round as soon as the one running (if any) is done. */
  sweepSoon(): void {
    if (!this.running || this.sweepQueued) return
    this.sweepQueued = true
    this.enqueue(async () => {
      this.sweepQueued = false
      await this.sweep()
    })
  }

  /** Resolves once the rounds asked for so far are done (tests). */
  idle(): Promise<void> {
    return this.rounds
  }

  private async sweep(): Promise<void> {
    const now = this.now()
    const open = [...this.open.values()]
    const lostOpen = open.filter((a) => a.kind === 'drone_lost')
    const routesOpen = open.filter((a) => a.kind === 'route_blocked')
    const lateOpen = open.filter((a) => a.kind === 'delivery_late')
    const [pairs, offline, failed, promised] = await Promise.all([
      this.facts.dronesOfDeliveries(
        lostOpen.map((a) => ({ deliveryId: a.subject.deliveryId!, droneId: a.subject.droneId! })),
      ),
      this.facts.offlineStations(),
      this.facts.failedRoutes(
        new Date(now.getTime() - ROUTE_LOOKBACK_MS),
        routesOpen.map((a) => a.subject.deliveryId!),
      ),
      this.facts.promisedDeliveries(lateOpen.map((a) => a.subject.deliveryId!)),
    ])
    const alerted = await this.repository.routeBlockedAlerted(failed.map((f) => f.deliveryId))
    const routes = failed.map((f) => ({
      ...f,
      crossing:
        f.pickup === null || f.dropoff === null
          ? []
          : this.zones
              .crossing(f.fleetId, f.pickup, f.dropoff, now)
              .map((z) => ({ id: z.id, name: z.name })),
      alerted: alerted.has(f.deliveryId),
    }))
    await this.apply(
      merge(
        judgeLost(pairs, lostOpen, {
          now,
          staleAfterS: this.o.staleAfterS,
          offlineGraceS: this.o.offlineGraceS,
          listeningSince: this.o.listeningSince(),
        }),
        judgeStations(offline, open, { now, offlineGraceS: this.o.offlineGraceS }),
        judgeRoutes(routes, routesOpen),
        judgeLate(promised, lateOpen, { now, marginS: this.o.lateMarginS }),
      ),
    )
  }

  private async apply(d: Decisions): Promise<void> {
    if (!this.running) return
    const { changed, conflicts } = await this.service.apply(d)
    for (const alert of changed) {
      const o: OpenAlert = {
        id: alert.id,
        fleetId: alert.fleetId,
        kind: alert.kind,
        subject: alert.subject,
      }
      if (alert.state === 'resolved') this.forget(o)
      else this.remember(o)
    }
    // Another round (an instance that led before) opened one meanwhile: read them again.
    if (conflicts > 0) await this.reload()
  }

  private enqueue(round: () => Promise<void>): void {
    this.rounds = this.rounds.then(round).catch((err: unknown) => {
      this.o.log.warn({ err }, 'alert evaluation failed: the next round judges again')
    })
  }

  private async reload(): Promise<void> {
    const all = await this.repository.open()
    this.open.clear()
    this.byDrone.clear()
    for (const a of all) this.remember(a)
  }

  private remember(a: OpenAlert): void {
    this.open.set(a.id, a)
    if (a.subject.droneId === undefined) return
    const key = `${a.fleetId}/${a.subject.droneId}`
    const ids = this.byDrone.get(key) ?? new Set()
    ids.add(a.id)
    this.byDrone.set(key, ids)
  }

  private forget(a: OpenAlert): void {
    this.open.delete(a.id)
    if (a.subject.droneId !== undefined)
      this.byDrone.get(`${a.fleetId}/${a.subject.droneId}`)?.delete(a.id)
  }

  private alertsOfDrone(fleetId: string, droneId: string): OpenAlert[] {
    const ids = this.byDrone.get(`${fleetId}/${droneId}`)
    if (ids === undefined) return []
    return [...ids].flatMap((id) => {
      const a = this.open.get(id)
      return a === undefined ? [] : [a]
    })
  }

  /** The alerts not resolved, as held (tests). */
  get held(): OpenAlert[] {
    return [...this.open.values()]
  }
}

function dedupe<T extends { id: string }>(list: T[]): T[] {
  return [...new Map(list.map((z) => [z.id, z])).values()]
}
