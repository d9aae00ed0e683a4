// What a simulated fleet can fly, and the demand it is given by default (issue 15): the
// stations asking for more deliveries than the drones can fly grows a backlog without end.
// Worked out from the simulator's own model (flight.ts) and the fleet's actual layout.
import { BATTERY, DEFAULT_FLIGHT, MAX_WIND_MPS, MIN_GROUND_MPS, drainPct } from './flight.ts'
import { distanceM } from './geo.ts'
import type { LatLon } from './geo.ts'

/**
 * Share of the fleet's capacity the default demand asks for. Requests arrive at random
 * (a Poisson process), so a queue in front of drones busy 70% of the time stays short;
 * nearer 100% it grows long, and a strong wind lowers the capacity for a while.
 */
export const DEMAND_UTILISATION = 0.7

/**
 * The api's dispatcher matches waiting requests with free drones once a wall-clock
 * second (apps/api/src/plugins/app/dispatcher.ts, `intervalMs`): a drone that lands while
 * requests wait is given one after half a round on average. In simulated time that is
 * `timeScale` times longer: 30 s per delivery at x60.
 */
const DISPATCH_ROUND_S = 1

/** Climb to cruise altitude and descent from it, s (flight.ts). */
const verticalS =
  DEFAULT_FLIGHT.cruiseAltM / DEFAULT_FLIGHT.climbMps +
  DEFAULT_FLIGHT.cruiseAltM / DEFAULT_FLIGHT.descentMps

export interface CapacityInput {
  /** Where the stations are. */
  stations: readonly LatLon[]
  /** Each drone's airspeed in cruise, m/s. */
  cruiseMps: readonly number[]
  /** Simulated time runs this many times faster than the wall clock. */
  timeScale: number
  /**
   * A steady wind, m/s, from every direction alike. Default: averaged over the wind the
   * simulator blows, which wanders between calm and MAX_WIND_MPS.
   */
  windMps?: number
}

export interface Capacity {
  /** Deliveries the fleet flies per simulated hour, at most, in the long run. */
  perHour: number
  /** Simulated seconds one delivery takes a drone of mean airspeed: flights, charging and waiting. */
  cycleS: number
}

/**
 * The fleet's capacity. Each delivery takes a drone from where its last one ended (a
 * random station: the dispatcher's nearest free drone is often nearer, so this errs on
 * the safe side) to the pick-up, then to the drop-off (another random station), and
 * costs the battery that both flights drain, which it must charge back on a station
 * before the energy runs out; then it waits for the dispatcher's next round.
 */
export function fleetCapacity(input: CapacityInput): Capacity {
  const { stations, cruiseMps, timeScale } = input
  // Flight time and drain are linear in the distance: the mean distance is enough.
  let sumM = 0
  for (const a of stations) for (const b of stations) if (a !== b) sumM += distanceM(a, b)
  const meanM = sumM / (stations.length * (stations.length - 1))
  // From a random station the drone is at the pick-up already one time in `stations.length`.
  const pickupShare = 1 - 1 / stations.length
  const winds =
    input.windMps !== undefined
      ? [input.windMps]
      : Array.from({ length: 21 }, (_, i) => (i / 20) * MAX_WIND_MPS)
  const cycle = (airspeedMps: number): number => {
    const flightS = verticalS + meanM * mean(winds.map((w) => cruiseSecondsPerM(airspeedMps, w)))
    const drainedPct = (1 + pickupShare) * drainPct(flightS, meanM)
    const chargeS = drainedPct / BATTERY.chargePctPerS
    return (1 + pickupShare) * flightS + chargeS + (timeScale * DISPATCH_ROUND_S) / 2
  }
  // 100,000 drones have a few hundred airspeeds to the centimetre per second.
  const cycles = new Map<number, number>()
  let perHour = 0
  for (const v of cruiseMps) {
    const key = Math.round(v * 100) / 100
    let c = cycles.get(key)
    if (c === undefined) cycles.set(key, (c = cycle(key)))
    perHour += 3600 / c
  }
  return { perHour, cycleS: cruiseMps.length > 0 ? cycle(mean(cruiseMps)) : Infinity }
}

/**
 * Delivery requests per station per simulated minute that keep a fleet busy
 * DEMAND_UTILISATION of the time: what the simulator asks for unless told (`--demand`).
 */
export function defaultDemandPerMin(input: CapacityInput): number {
  return (DEMAND_UTILISATION * fleetCapacity(input).perHour) / 60 / input.stations.length
}

/**
 * Mean cruise time per metre with a wind of `windMps` from any direction alike: the
 * ground speed is the airspeed plus the wind's along-track part, never below
 * MIN_GROUND_MPS (flight.ts). A head wind costs more than a tail wind gives back.
 */
function cruiseSecondsPerM(airspeedMps: number, windMps: number): number {
  const n = 360
  let sum = 0
  for (let i = 0; i < n; i++) {
    const along = windMps * Math.cos((2 * Math.PI * (i + 0.5)) / n)
    sum += 1 / Math.max(MIN_GROUND_MPS, airspeedMps + along)
  }
  return sum / n
}

function mean(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length
}
