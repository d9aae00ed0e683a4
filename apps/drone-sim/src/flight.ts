import { bearingDeg, distanceM, moveToward } from './geo.ts'
import type { LatLon } from './geo.ts'

/** How a drone flies. Speeds in m/s, altitudes in metres. */
export interface FlightParams {
  /** Airspeed in cruise; the simulator gives each drone 12–18 m/s. */
  cruiseMps: number
  /** Cruise altitude above the station. Default 100 m. */
  cruiseAltM: number
  /** Vertical speed climbing after take-off. Default 4 m/s. */
  climbMps: number
  /** Vertical speed descending to land. Default 3 m/s. */
  descentMps: number
}

export const DEFAULT_FLIGHT: Omit<FlightParams, 'cruiseMps'> = {
  cruiseAltM: 100,
  climbMps: 4,
  descentMps: 3,
}

/** The wind, blowing towards `toDeg` at `speedMps`. */
export interface Wind {
  speedMps: number
  toDeg: number
}

export type Phase = 'climb' | 'cruise' | 'descent' | 'landed'

export interface Flight {
  readonly to: LatLon
  phase: Phase
  pos: LatLon
  altM: number
  /** Ground speed now, m/s. */
  speedMps: number
  headingDeg: number
  /** Horizontal distance flown so far, metres. */
  flownM: number
}

/** Slowest ground speed in a head wind, m/s: a drone always makes progress. */
export const MIN_GROUND_MPS = 3
/** Strongest wind the simulator blows, m/s; it wanders between calm and this. */
export const MAX_WIND_MPS = 10
/** Longest piece of time one step integrates, seconds: keeps large time scales accurate. */
const MAX_SUBSTEP_S = 1

/** A flight from `from` (at `altM`, 0 on the ground) to `to`. */
export function startFlight(from: LatLon, to: LatLon, altM: number, params: FlightParams): Flight {
  return {
    to,
    phase: altM >= params.cruiseAltM ? 'cruise' : 'climb',
    pos: { ...from },
    altM,
    speedMps: 0,
    headingDeg: bearingDeg(from, to),
    flownM: 0,
  }
}

/**
 * Advances a flight by `dtS` seconds: climb vertically to cruise altitude, cruise along
 * the great circle at airspeed plus the wind's along-track component, descend
 * vertically over the destination, land. Returns the seconds of `dtS` left over
 * after landing (0 while still flying), so the caller can time the landing exactly.
 */
export function stepFlight(f: Flight, dtS: number, params: FlightParams, wind: Wind): number {
  let left = dtS
  while (left > 0 && f.phase !== 'landed') {
    const dt = Math.min(left, MAX_SUBSTEP_S)
    left -= dt - advance(f, dt, params, wind)
  }
  return left
}

/** One substep; returns the part of `dt` not used because a phase ended. */
function advance(f: Flight, dt: number, p: FlightParams, wind: Wind): number {
  switch (f.phase) {
    case 'climb': {
      f.speedMps = 0
      const need = (p.cruiseAltM - f.altM) / p.climbMps
      if (need > dt) {
        f.altM += p.climbMps * dt
        return 0
      }
      f.altM = p.cruiseAltM
      f.phase = 'cruise'
      return dt - need
    }
    case 'cruise': {
      const remaining = distanceM(f.pos, f.to)
      if (remaining > 0) f.headingDeg = bearingDeg(f.pos, f.to)
      const along = wind.speedMps * Math.cos(((wind.toDeg - f.headingDeg) * Math.PI) / 180)
      f.speedMps = Math.max(MIN_GROUND_MPS, p.cruiseMps + along)
      const need = remaining / f.speedMps
      if (need > dt) {
        f.pos = moveToward(f.pos, f.to, f.speedMps * dt)
        f.flownM += f.speedMps * dt
        return 0
      }
      f.pos = { ...f.to }
      f.flownM += remaining
      f.speedMps = 0
      f.phase = 'descent'
      return dt - need
    }
    case 'descent': {
      const need = f.altM / p.descentMps
      if (need > dt) {
        f.altM -= p.descentMps * dt
        return 0
      }
      f.altM = 0
      f.phase = 'landed'
      return dt - need
    }
    case 'landed':
      return dt
  }
}

/** Seconds a flight of `distM` takes in still air, from take-off to touch-down. */
export function flightTimeS(distM: number, p: FlightParams): number {
  return p.cruiseAltM / p.climbMps + distM / p.cruiseMps + p.cruiseAltM / p.descentMps
}

/** Battery, in percent of a full charge. */
export const BATTERY = {
  /** Drain per second in the air (hover and avionics), %/s. */
  airbornePctPerS: 0.03,
  /** Extra drain per kilometre flown, %/km. */
  pctPerKm: 1.5,
  /** Charge per second on a station, %/s: empty to full in under 7 minutes. */
  chargePctPerS: 0.25,
  /** Below this a drone reports battery.low. */
  lowPct: 20,
  /** Kept in hand when deciding whether an assignment can be flown. */
  reservePct: 15,
} as const

/** Battery used by `dtS` seconds in the air covering `distM` metres, %. */
export function drainPct(dtS: number, distM: number): number {
  return dtS * BATTERY.airbornePctPerS + (distM / 1000) * BATTERY.pctPerKm
}

/** Battery a still-air flight of `distM` needs, %. */
export function requiredPct(distM: number, p: FlightParams): number {
  return drainPct(flightTimeS(distM, p), distM)
}
