import { and, eq, inArray, isNull, not, notInArray, or, sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { deliveries, stations } from '../db/schema.ts'
import { distanceM } from '../geo.ts'
import { EtaHorizons } from '../delivery/eta-horizons.ts'
import type { HorizonEta } from '../delivery/eta-horizons.ts'
import { scoreHorizons, storeCrossedHorizons } from '../delivery/eta-horizons-store.ts'
import { LOST_REASONS } from './transitions.ts'

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]

/** Weight of the newest ground speed in the smoothed speed (an exponential moving average). */
const ALPHA = 0.3
/** Vertical speed assumed for the landing after arriving over the drop-off, m/s. */
export const DESCENT_MPS = 3

export interface EtaInput {
  deliveryId: string
  fleetId: string
  ts: number
  lat: number
  lon: number
  altM: number
  speedMps: number
  state: string
}

/**
 * ETAs of deliveries in flight (docs/architecture.md "ETA"): remaining great-circle
 * distance to the drop-off over the smoothed ground speed, plus the landing. Times are
 * the drone's own (`ts`), so a time-scaled simulator gets consistent ETAs. The
 * smoothing state lives here, per delivery, for as long as it flies.
 */
export class EtaEstimator {
  private readonly smoothed = new Map<string, number>()
  /** The ETAs each delivery had at the horizons a customer is scored at. */
  readonly horizons = new EtaHorizons()

  /** Updates `eta_at` of the deliveries in `points` (the newest point of each) inside `tx`. */
  async update(tx: Tx, points: EtaInput[]): Promise<void> {
    const latest = new Map<string, EtaInput>()
    for (const p of points) {
      if (p.state !== 'en_route' && p.state !== 'landing') continue
      const seen = latest.get(p.deliveryId)
      if (seen === undefined || p.ts >= seen.ts) latest.set(p.deliveryId, p)
    }
    if (latest.size === 0) return
    const targets = await tx
      .select({
        id: deliveries.id,
        lat: stations.lat,
        lon: stations.lon,
        distanceM: deliveries.distanceM,
        hadEta: sql<boolean>`${deliveries.etaAt} is not null`,
      })
      .from(deliveries)
      .innerJoin(
        stations,
        and(eq(stations.id, deliveries.dropoffStationId), eq(stations.fleetId, deliveries.fleetId)),
      )
      .where(
        and(
          inArray(deliveries.id, [...latest.keys()]),
          // One that can move no more has no flight to follow: its drone's points until it
          // hears of a cancel would be kept in memory for good (forget() is behind it).
          not(
            or(
              inArray(deliveries.status, ['completed', 'cancelled']),
              and(
                eq(deliveries.status, 'failed'),
                or(
                  isNull(deliveries.failureReason),
                  notInArray(deliveries.failureReason, [...LOST_REASONS]),
                ),
              ),
            )!,
          ),
        ),
      )
    const crossed: HorizonEta[] = []
    for (const t of targets) {
      const p = latest.get(t.id)!
      const eta = this.estimate(p, t)
      if (eta === undefined) continue
      await tx
        .update(deliveries)
        .set({ etaAt: new Date(eta) })
        .where(eq(deliveries.id, t.id))
      crossed.push(
        ...this.horizons.observe({
          deliveryId: t.id,
          ts: p.ts,
          etaAt: eta,
          remainingM: distanceM(p, t),
          distanceM: t.distanceM,
          first: !t.hadEta,
        }),
      )
    }
    await storeCrossedHorizons(tx, crossed)
  }

  /** At a delivery's arrival (the event's ts), inside its transaction: scores its horizons. */
  arrived(tx: Tx, deliveryId: string, at: Date): Promise<void> {
    return scoreHorizons(tx, deliveryId, this.horizons.atArrival(deliveryId, at.getTime()), at)
  }

  /** Forgets a delivery that is no longer in flight. */
  forget(deliveryId: string): void {
    this.smoothed.delete(deliveryId)
    this.horizons.forget(deliveryId)
  }

  estimate(p: EtaInput, dropoff: { lat: number; lon: number }): number | undefined {
    const previous = this.smoothed.get(p.deliveryId)
    // Hovering or landing reports no ground speed: keep the last smoothed value.
    const speed =
      p.speedMps > 0
        ? previous === undefined
          ? p.speedMps
          : ALPHA * p.speedMps + (1 - ALPHA) * previous
        : previous
    if (speed !== undefined) this.smoothed.set(p.deliveryId, speed)
    const remainingM = distanceM(p, dropoff)
    if (speed === undefined || speed <= 0)
      return remainingM < 1 ? p.ts + (p.altM / DESCENT_MPS) * 1000 : undefined
    return p.ts + (remainingM / speed + p.altM / DESCENT_MPS) * 1000
  }
}
