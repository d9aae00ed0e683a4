/**
 * The horizons at which a delivery's ETA is scored (ARCHITECTURE.md "ETA", issue 15):
 * what a customer saw at departure, at half the distance, and 5 and 1 minutes before the
 * actual arrival. The last ETA alone, computed a second before arrival, says little.
 */
export const ETA_HORIZONS = ['departure', 'half', 't-5min', 't-1min'] as const
export type EtaHorizon = (typeof ETA_HORIZONS)[number]

/** How long before the arrival the time horizons lie, ms of the drone's clock. */
const BEFORE_ARRIVAL_MS = { 't-5min': 300_000, 't-1min': 60_000 } as const
const LONGEST_MS = Math.max(...Object.values(BEFORE_ARRIVAL_MS))

/**
 * Resolution of the history, ms of the drone's clock. Default 1,000: an ETA computed
 * less than this after the last one kept is not kept, so the ETA "in force" at a time
 * horizon is one computed at most this much before the true one, and a flight holds at
 * most LONGEST_MS / HISTORY_STEP_MS + 2 entries (302: 5 KB) however fast it reports.
 */
export const HISTORY_STEP_MS = 1_000

/** One ETA as computed from a telemetry point. */
export interface EtaObservation {
  deliveryId: string
  /** The point's `ts` (the drone's clock), epoch ms. */
  ts: number
  /** The ETA computed from it, epoch ms. */
  etaAt: number
  /** Great-circle distance left to the drop-off, m. */
  remainingM: number
  /** Pick-up to drop-off, m (`deliveries.distance_m`); null when unknown. */
  distanceM: number | null
  /** No ETA was stored for the delivery before this one: it is the departure's. */
  first: boolean
}

/** An ETA at one horizon: `predictedAt` is the drone's `ts` it was computed at, epoch ms. */
export interface HorizonEta {
  deliveryId: string
  horizon: EtaHorizon
  predictedAt: number
  etaAt: number
}

interface Flight {
  /** The ETAs kept, oldest first: the drone's ts and the ETA, epoch ms (parallel arrays). */
  ts: number[]
  eta: number[]
  /** An ETA was seen while more than half the distance was left. */
  firstHalfSeen: boolean
  /** `ts` of the ETA taken as the half-distance one. */
  halfAt?: number
}

/**
 * Follows each delivery in flight through its ETAs and picks the one in force at each
 * horizon. Pure (no clock, no database): `observe` every computed ETA in the drone's time
 * order, `atArrival` when it arrives, `forget` once that is committed.
 *
 * `departure` and `half` are known when they are crossed, so the caller can store them at
 * once (they then survive a restart of the api); `t-5min` and `t-1min` are known only at
 * the arrival, from the history kept here in memory (lost on restart: those horizons are
 * then missing for the flights that were in the air, unless the history rebuilt since
 * reaches back far enough). Observing the same point twice (a batch written again after
 * a failed transaction) gives the same answer.
 */
export class EtaHorizons {
  private readonly flights = new Map<string, Flight>()

  /** Deliveries followed now. */
  get size(): number {
    return this.flights.size
  }

  /** Takes one computed ETA; returns the horizons it is the ETA of (departure, half). */
  observe(o: EtaObservation): HorizonEta[] {
    let f = this.flights.get(o.deliveryId)
    if (f === undefined) {
      f = { ts: [], eta: [], firstHalfSeen: false }
      this.flights.set(o.deliveryId, f)
    }
    const last = f.ts.at(-1)
    // A point older than one already seen (a late redelivery) is not part of the flight
    // as the customer followed it.
    if (last !== undefined && o.ts < last) return []
    if (last === o.ts) f.eta[f.eta.length - 1] = o.etaAt
    else if (last === undefined || o.ts - last >= HISTORY_STEP_MS) {
      f.ts.push(o.ts)
      f.eta.push(o.etaAt)
      // Only the last ETA at or before the oldest moment a horizon may still need is kept.
      const oldest = o.ts - LONGEST_MS
      let drop = 0
      while (drop + 1 < f.ts.length && f.ts[drop + 1]! <= oldest) drop++
      if (drop > 0) {
        f.ts.splice(0, drop)
        f.eta.splice(0, drop)
      }
    }

    const crossed: HorizonEta[] = []
    const at = (horizon: EtaHorizon): HorizonEta => ({
      deliveryId: o.deliveryId,
      horizon,
      predictedAt: o.ts,
      etaAt: o.etaAt,
    })
    if (o.first) crossed.push(at('departure'))
    if (o.distanceM !== null) {
      if (o.remainingM > o.distanceM / 2) f.firstHalfSeen = true
      // The crossing must have been seen: after a restart in the second half, the first
      // ETA is not the half-distance one. The departure's may be, on a short hop.
      else if (f.halfAt === undefined ? f.firstHalfSeen || o.first : f.halfAt === o.ts) {
        f.halfAt = o.ts
        crossed.push(at('half'))
      }
    }
    return crossed
  }

  /**
   * The ETAs in force at the time horizons of an arrival at `arrivedAt` (the drone's
   * clock, epoch ms): for each, the last kept at or before that moment. None when the
   * flight was shorter, or the history does not reach back that far.
   */
  atArrival(deliveryId: string, arrivedAt: number): HorizonEta[] {
    const f = this.flights.get(deliveryId)
    if (f === undefined) return []
    const found: HorizonEta[] = []
    for (const [horizon, beforeMs] of Object.entries(BEFORE_ARRIVAL_MS) as [EtaHorizon, number][]) {
      const moment = arrivedAt - beforeMs
      let i = f.ts.length - 1
      while (i >= 0 && f.ts[i]! > moment) i--
      if (i >= 0) found.push({ deliveryId, horizon, predictedAt: f.ts[i]!, etaAt: f.eta[i]! })
    }
    return found
  }

  /** Drops a delivery that no longer flies. */
  forget(deliveryId: string): void {
    this.flights.delete(deliveryId)
  }
}
