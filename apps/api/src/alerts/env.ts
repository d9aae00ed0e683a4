import { z } from 'zod'
import { isValidId } from '@skyline/schemas'

// The alerts' variables (docs/architecture.md "Alerts"), part of the api's one schema over
// the environment (config.ts spreads them in and checks `withAlertRules`).

const int = z.coerce.number().int()
const pct = z.coerce.number().min(0).max(100)

/** `f1:30,f2:15`: a fleet id and a percentage, comma-separated. */
const byFleet = z.string().transform((value, ctx) => {
  const out: Record<string, number> = {}
  for (const entry of value.split(',').map((e) => e.trim())) {
    if (entry === '') continue
    const [fleet = '', p = '', ...rest] = entry.split(':')
    const n = Number(p)
    if (!isValidId(fleet) || p.trim() === '' || !(n >= 0 && n <= 100) || rest.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `${entry} is not fleet:percent (a fleet id, a number 0 to 100)`,
      })
      return z.NEVER
    }
    out[fleet] = n
  }
  return out
})

export const ALERT_ENV = {
  /** Below this battery a drone's `battery_low` opens, % (every fleet but those below). Default 20. */
  ALERT_BATTERY_LOW_PCT: pct.default(20),
  /** Per fleet thresholds, `f1:30,f2:15`, overriding ALERT_BATTERY_LOW_PCT. Default none. */
  ALERT_BATTERY_LOW_PCT_BY_FLEET: byFleet.default({}),
  /** `battery_low` resolves once the battery is this far above the threshold, % (hysteresis). Default 5. */
  ALERT_BATTERY_CLEAR_MARGIN_PCT: z.coerce.number().min(0).max(50).default(5),
  /** A drone with a delivery in flight not heard this long is lost, s (`drone_lost`). Default 30. */
  ALERT_STALE_S: int.min(1).max(86_400).default(30),
  /**
   * A drone or station offline (its will, or its own status) opens `drone_lost` or
   * `station_offline` only once it has been offline this long, s: a connection dropped and
   * back within it opens nothing. Default 10.
   */
  ALERT_OFFLINE_GRACE_S: int.min(0).max(3_600).default(10),
  /**
   * A delivery whose ETA (or the clock) stands later than the time promised at its
   * assignment by more than this is late, s (`delivery_late`). Default 120.
   */
  ALERT_LATE_MARGIN_S: int.min(0).max(86_400).default(120),
  /** How often drone_lost, station_offline, route_blocked and delivery_late are judged, ms. Default 2,000. */
  ALERT_SWEEP_MS: int.min(50).max(600_000).default(2_000),
  /** Where alerts are POSTed (JSON, signed); default none: no webhook. */
  ALERT_WEBHOOK_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** The webhook's HMAC-SHA256 key; required with ALERT_WEBHOOK_URL, at least 16 characters. */
  ALERT_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Attempts of one change at most; then it is a dead letter. Default 8. */
  ALERT_WEBHOOK_MAX_ATTEMPTS: int.min(1).max(100).default(8),
  /** Wait after the first failed attempt, ms, doubling after each. Default 1,000. */
  ALERT_WEBHOOK_BACKOFF_MS: int.min(1).max(3_600_000).default(1_000),
  /** Longest wait between two attempts, ms. Default 300,000 (5 min). */
  ALERT_WEBHOOK_BACKOFF_MAX_MS: int.min(1).max(86_400_000).default(300_000),
  /** An attempt not answered within this is a failure, ms. Default 5,000. */
  ALERT_WEBHOOK_TIMEOUT_MS: int.min(100).max(120_000).default(5_000),
}

/** The rules across the alerts' variables: a URL needs its secret, and a secret its URL. */
export function withAlertRules<
  S extends z.ZodType<{
    ALERT_WEBHOOK_URL?: string | undefined
    ALERT_WEBHOOK_SECRET?: string | undefined
  }>,
>(schema: S) {
  return schema
    .refine(
      (env) => env.ALERT_WEBHOOK_URL === undefined || env.ALERT_WEBHOOK_SECRET !== undefined,
      {
        message: 'is required with ALERT_WEBHOOK_URL: the webhook signs what it sends',
        path: ['ALERT_WEBHOOK_SECRET'],
      },
    )
    .refine(
      (env) => env.ALERT_WEBHOOK_SECRET === undefined || env.ALERT_WEBHOOK_URL !== undefined,
      {
        message: 'needs ALERT_WEBHOOK_URL: there is no webhook to sign for',
        path: ['ALERT_WEBHOOK_SECRET'],
      },
    )
}
