import { sql } from 'drizzle-orm'
import type { Db } from './client.ts'

const DAY_MS = 86_400_000

/** `telemetry_p20261124` for the UTC day holding `ts`. */
function partitionName(dayStartMs: number): string {
  return `telemetry_p${new Date(dayStartMs).toISOString().slice(0, 10).replaceAll('-', '')}`
}

/** The first instant JavaScript writes as `+010000-...`, which Postgres refuses (22009). */
const YEAR_10000 = Date.UTC(10_000, 0, 1)

/** A partition bound Postgres reads; the day after 9999-12-31 (MAX_TS) is 'infinity'. */
function bound(ms: number): string {
  return ms >= YEAR_10000 ? 'infinity' : new Date(ms).toISOString()
}

/**
 * Creates the daily telemetry partitions on demand. Payload times are the devices'
 * (a time-scaled simulator runs days ahead), so partitions follow the data rather than
 * the wall clock; known ones are remembered to keep the hot path to one Set lookup.
 */
export class TelemetryPartitions {
  private readonly known = new Set<number>()

  constructor(private readonly db: Db) {}

  async ensureFor(times: Iterable<Date>): Promise<void> {
    const days = new Set<number>()
    for (const t of times) days.add(Math.floor(t.getTime() / DAY_MS) * DAY_MS)
    for (const day of days) {
      if (this.known.has(day)) continue
      const from = bound(day)
      const to = bound(day + DAY_MS)
      await this.db.execute(
        sql.raw(
          `CREATE TABLE IF NOT EXISTS "${partitionName(day)}" PARTITION OF "telemetry" FOR VALUES FROM ('${from}') TO ('${to}')`,
        ),
      )
      this.known.add(day)
    }
  }

  /** Drops the partitions whose whole day is older than `cutoff`; returns their names. */
  async dropOlderThan(cutoff: Date): Promise<string[]> {
    const rows = await this.db.execute(sql`
      SELECT c.relname AS name FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
      WHERE p.relname = 'telemetry'`)
    const dropped: string[] = []
    for (const { name } of rowsOf<{ name: string }>(rows)) {
      const m = /^telemetry_p(\d{4})(\d{2})(\d{2})$/.exec(name)
      if (m === null) continue
      const day = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))
      if (day + DAY_MS <= cutoff.getTime()) {
        await this.db.execute(sql.raw(`DROP TABLE IF EXISTS "${name}"`))
        this.known.delete(day)
        dropped.push(name)
      }
    }
    return dropped
  }
}

/** postgres.js returns the rows as the result; PGlite wraps them in `rows`. */
export function rowsOf<T>(result: unknown): T[] {
  return Array.isArray(result) ? (result as T[]) : ((result as { rows: T[] }).rows ?? [])
}
