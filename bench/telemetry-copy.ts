// Telemetry rows straight into Postgres with COPY FROM STDIN: the fast path to fill a
// table for a read benchmark, and the physical ceiling the MQTT ingest is measured
// against (same rows, same partitioned table, no MQTT, no batching, no acknowledgements).
import { finished } from 'node:stream/promises'
import type { Sql } from 'postgres'

const DAY_MS = 86_400_000
const COLUMNS =
  'fleet_id, drone_id, ts, seq, lat, lon, alt_m, speed_mps, heading_deg, battery_pct, state, delivery_id, received_at'

export interface CopyRow {
  fleetId: string
  droneId: string
  tsMs: number
  seq: number
}

/** Creates the daily partitions holding [fromMs, toMs), as the api would on first use. */
export async function ensurePartitions(sql: Sql, fromMs: number, toMs: number): Promise<void> {
  for (let day = Math.floor(fromMs / DAY_MS) * DAY_MS; day < toMs; day += DAY_MS) {
    const name = `telemetry_p${new Date(day).toISOString().slice(0, 10).replaceAll('-', '')}`
    await sql.unsafe(
      `CREATE TABLE IF NOT EXISTS "${name}" PARTITION OF "telemetry" ` +
        `FOR VALUES FROM ('${new Date(day).toISOString()}') TO ('${new Date(day + DAY_MS).toISOString()}')`,
    )
  }
}

/** One row in COPY's text format, with the values the simulator sends (a drone circling). */
function line(r: CopyRow): string {
  const a = (r.seq % 3_600) * ((2 * Math.PI) / 3_600)
  const ts = new Date(r.tsMs).toISOString()
  return (
    `${r.fleetId}\t${r.droneId}\t${ts}\t${r.seq}\t${(47.37 + 0.01 * Math.sin(a)).toFixed(6)}\t` +
    `${(8.54 + 0.01 * Math.cos(a)).toFixed(6)}\t512.4\t12.5\t${((r.seq % 3_600) / 10).toFixed(1)}\t` +
    `87.5\ten_route\t\\N\t${ts}\n`
  )
}

/**
 * COPYs `rows` into telemetry in one statement, in chunks of lines so that the stream's
 * buffer, not the row count, bounds memory. Resolves with the wall time, ms.
 */
export async function copyTelemetry(sql: Sql, rows: Iterable<CopyRow>): Promise<number> {
  const started = performance.now()
  const stream = await sql.unsafe(`COPY telemetry (${COLUMNS}) FROM STDIN`).writable()
  let chunk = ''
  let lines = 0
  for (const r of rows) {
    chunk += line(r)
    if (++lines % 1_000 !== 0) continue
    if (!stream.write(chunk)) await new Promise((resolve) => stream.once('drain', resolve))
    chunk = ''
  }
  stream.end(chunk)
  await finished(stream)
  return performance.now() - started
}
