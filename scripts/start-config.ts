// `npm start`'s own configuration: the demo fleet's SIM_* variables, plus what the
// launcher needs from the api's configuration (its port and DATA_DIR), read by the
// api's own loader so that defaults and messages are the api's.
import { resolve } from 'node:path'
import { z } from 'zod'
import {
  ConfigError as ApiConfigError,
  loadConfig as loadApiConfig,
} from '../apps/api/src/config.ts'

/** A bad variable. The message names it, so `npm start` prints it as is. */
export class StartConfigError extends Error {
  readonly code = 'invalid_config'
}

// Bounds are the simulator's own (apps/drone-sim/src/config.ts), checked here so that a
// bad value stops `npm start` before anything is built or started.
const SimEnvSchema = z.object({
  /** Drones in the demo fleet. Default 12. */
  SIM_DRONES: z.coerce.number().int().min(0).max(100_000).default(12),
  /** Landing stations in the demo fleet. Default 4. */
  SIM_STATIONS: z.coerce.number().int().min(2).max(1_000).default(4),
  /** Simulated time runs this many times faster than the clock. Default 1. */
  SIM_TIME_SCALE: z.coerce.number().positive().max(10_000).default(1),
  /**
   * Delivery requests per station per simulated minute. Default: the simulator's, 70% of
   * what the fleet can fly (apps/drone-sim/src/capacity.ts).
   */
  SIM_DEMAND: z.coerce.number().min(0).max(600).optional(),
})

export type SimEnv = z.infer<typeof SimEnvSchema>

export interface StartConfig {
  /** Absolute, shared by every app: the token secret and PGlite live there. Default ./data. */
  dataDir: string
  /** Where the api (and the map) listens. Default 3000. */
  httpPort: number
  sim: SimEnv
}

/**
 * Reads `npm start`'s configuration once. Empty strings count as unset, as in the apps.
 * @throws StartConfigError naming every bad variable.
 */
export function loadStartConfig(env: Record<string, string | undefined>): StartConfig {
  let api
  try {
    api = loadApiConfig(env)
  } catch (err) {
    if (err instanceof ApiConfigError) throw new StartConfigError(err.message)
    throw err
  }
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''))
  const sim = SimEnvSchema.safeParse(present)
  if (!sim.success) {
    const lines = sim.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
    throw new StartConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`)
  }
  return { dataDir: resolve(api.DATA_DIR), httpPort: api.HTTP_PORT, sim: sim.data }
}

/** The simulator's flags for the demo fleet. */
export function simArgs(sim: SimEnv): string[] {
  return [
    '--drones',
    String(sim.SIM_DRONES),
    '--stations',
    String(sim.SIM_STATIONS),
    '--time-scale',
    String(sim.SIM_TIME_SCALE),
    ...(sim.SIM_DEMAND === undefined ? [] : ['--demand', String(sim.SIM_DEMAND)]),
  ]
}

/** A week of wall-clock time, s: how long a time-scaled demo's clock stays within the api's window. */
const DEMO_WEEK_S = 7 * 86_400

/**
 * What `npm start` adds to the api's environment. A time-scaled simulator's clock runs
 * ahead of the wall clock by (scale - 1) x the time elapsed, and the api refuses device
 * times too far ahead (DEVICE_CLOCK_AHEAD_MAX_S, default 300 s): unless set, the window
 * is widened to cover a week of the demo running.
 */
export function apiEnvFor(
  sim: SimEnv,
  env: Record<string, string | undefined>,
): Record<string, string> {
  if (sim.SIM_TIME_SCALE <= 1 || (env.DEVICE_CLOCK_AHEAD_MAX_S ?? '') !== '') return {}
  return {
    DEVICE_CLOCK_AHEAD_MAX_S: String(Math.ceil((sim.SIM_TIME_SCALE - 1) * DEMO_WEEK_S) + 300),
  }
}
