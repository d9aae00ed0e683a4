import { distanceM } from '../geo.ts'

// The time promised at assignment (docs/architecture.md "ETA", "The promise"): pure, so
// the lifecycle that stores it and the alert rule that judges it agree on the drone's clock.

/**
 * Ground speed a promise assumes, m/s: the simulator's drones cruise at 12–18 m/s of
 * airspeed, less a head wind (up to 10 m/s). Default 10.
 */
export const PROMISE_GROUND_MPS = 10
/** Time each leg (to the pick-up, to the drop-off) adds to its cruise: take-off, climb, descent, landing, s. */
export const PROMISE_LEG_OVERHEAD_S = 60

/**
 * The drone's clock (the `ts` its points carry, on which ETAs are computed) at the api's
 * `now`: its newest point's `ts`, moved on by the time since the api last heard it. Exact
 * for a drone whose clock is the api's; for a time-scaled simulator, behind by at most
 * what its clock gained since its last point. No point yet: the api's clock.
 */
export function droneClockAt(now: Date, positionAt: Date | null, lastSeenAt: Date | null): number {
  if (positionAt === null) return now.getTime()
  const since = lastSeenAt === null ? 0 : Math.max(0, now.getTime() - lastSeenAt.getTime())
  return positionAt.getTime() + since
}

/** A drone as assigned: where it is and its clock. */
export interface PromiseDrone {
  lat: number | null
  lon: number | null
  /** `ts` of its newest point. */
  positionAt: Date | null
  /** When the api last heard it (the api's clock). */
  lastSeenAt: Date | null
}

/**
 * The ETA promised when `drone` is given a delivery at `now`: on the drone's clock, its
 * flight to the pick-up (none from where it is not known) and on to the drop-off at
 * PROMISE_GROUND_MPS, each leg with PROMISE_LEG_OVERHEAD_S.
 */
export function promisedAt(
  now: Date,
  drone: PromiseDrone,
  pickup: { lat: number; lon: number },
  dropoff: { lat: number; lon: number },
): Date {
  const toPickupM =
    drone.lat === null || drone.lon === null
      ? 0
      : distanceM({ lat: drone.lat, lon: drone.lon }, pickup)
  const legs = toPickupM >= 1 ? 2 : 1
  const flightS =
    (toPickupM + distanceM(pickup, dropoff)) / PROMISE_GROUND_MPS + legs * PROMISE_LEG_OVERHEAD_S
  return new Date(
    Math.round(droneClockAt(now, drone.positionAt, drone.lastSeenAt) + flightS * 1000),
  )
}
