import { and, count, eq, isNotNull, isNull, sql } from 'drizzle-orm'
import type { FleetScope } from '../auth/principal.ts'
import type { Db } from '../db/client.ts'
import { fleetIn } from '../db/fleet-scope.ts'
import { deliveries, deliveryEtaHorizons } from '../db/schema.ts'
import { ETA_HORIZONS } from './eta-horizons.ts'
import type { EtaHorizon, HorizonEta } from './eta-horizons.ts'

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]

const row = (h: HorizonEta) => ({
  deliveryId: h.deliveryId,
  horizon: h.horizon,
  predictedAt: new Date(h.predictedAt),
  etaAt: new Date(h.etaAt),
})

/**
 * Stores the ETAs of horizons just crossed (departure, half), their error unknown yet.
 * A horizon already stored keeps its first ETA (a batch written again, a restart).
 */
export async function storeCrossedHorizons(tx: Tx, crossed: HorizonEta[]): Promise<void> {
  if (crossed.length === 0) return
  await tx.insert(deliveryEtaHorizons).values(crossed.map(row)).onConflictDoNothing()
}

/**
 * At a delivery's arrival (`arrivedAt`, the event's ts): stores the time horizons' ETAs
 * and scores every horizon of the delivery against the arrival, once.
 */
export async function scoreHorizons(
  tx: Tx,
  deliveryId: string,
  atArrival: HorizonEta[],
  arrivedAt: Date,
): Promise<void> {
  if (atArrival.length > 0)
    await tx.insert(deliveryEtaHorizons).values(atArrival.map(row)).onConflictDoNothing()
  await tx
    .update(deliveryEtaHorizons)
    .set({
      errorS: sql`extract(epoch from ${deliveryEtaHorizons.etaAt} - ${arrivedAt.toISOString()}::timestamptz)`,
    })
    .where(and(eq(deliveryEtaHorizons.deliveryId, deliveryId), isNull(deliveryEtaHorizons.errorS)))
}

export interface HorizonStats {
  horizon: EtaHorizon
  /** Arrived deliveries with an ETA at this horizon. */
  deliveries: number
  /** Over those: mean and 90th percentile (interpolated) of |error|, s. */
  meanAbsErrorS: number | null
  p90AbsErrorS: number | null
}

/** The ETA error at each horizon over `fleets`' arrived deliveries, in ETA_HORIZONS order. */
export async function horizonStats(db: Db, fleets: FleetScope = '*'): Promise<HorizonStats[]> {
  const abs = sql`abs(${deliveryEtaHorizons.errorS})`
  const orNull = (v: unknown) => (v === null ? null : Number(v))
  const rows = await db
    .select({
      horizon: deliveryEtaHorizons.horizon,
      deliveries: count(),
      mean: sql<number | null>`avg(${abs})`.mapWith(orNull),
      p90: sql<number | null>`percentile_cont(0.9) within group (order by ${abs})`.mapWith(orNull),
    })
    .from(deliveryEtaHorizons)
    .innerJoin(deliveries, eq(deliveries.id, deliveryEtaHorizons.deliveryId))
    .where(and(isNotNull(deliveryEtaHorizons.errorS), fleetIn(deliveries.fleetId, fleets)))
    .groupBy(deliveryEtaHorizons.horizon)
  return ETA_HORIZONS.map((horizon) => {
    const r = rows.find((x) => x.horizon === horizon)
    return {
      horizon,
      deliveries: r?.deliveries ?? 0,
      meanAbsErrorS: r?.mean ?? null,
      p90AbsErrorS: r?.p90 ?? null,
    }
  })
}
