// History: one drone's day at 1 Hz (86,400 points) as GeoJSON from REST, against the api
// on Postgres. The points go in with COPY (the fast path: this measures the read, not
// the ingest), then the same request is timed a few times and the median kept.
import postgres from 'postgres'
import { benchToken, startStack } from './stack.ts'
import { copyTelemetry, ensurePartitions } from './telemetry-copy.ts'
import type { CopyRow } from './telemetry-copy.ts'
import { median } from './report.ts'

export interface HistorySettings {
  points: number
  /** Timed requests (after one untimed, which warms the api's code and Postgres's cache). */
  runs: number
}

export const historySettingsFor = (quick: boolean): HistorySettings => ({
  points: 86_400,
  runs: quick ? 3 : 7,
})

export interface HistoryResult extends HistorySettings {
  insertS: number
  requestMs: number[]
  p50Ms: number
  bytes: number
  /** Points in the returned LineString: all of them, or the route's limit cut the day. */
  pointsReturned: number
}

const FLEET = 'hist'
const DRONE = 'h1'

export async function benchHistory(
  s: HistorySettings,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<HistoryResult> {
  const stack = await startStack({ database: 'postgres', signal, log })
  try {
    const sql = postgres(stack.databaseUrl!, { max: 1, onnotice: () => {} })
    // Yesterday, from midnight UTC: one whole daily partition.
    const fromMs = Math.floor(Date.now() / 86_400_000 - 1) * 86_400_000
    const toMs = fromMs + (s.points - 1) * 1_000
    try {
      await ensurePartitions(sql, fromMs, toMs + 1)
      const insertMs = await copyTelemetry(sql, points(s.points, fromMs))
      await sql`INSERT INTO drones (fleet_id, id, online, state, position_at)
                VALUES (${FLEET}, ${DRONE}, true, 'en_route', ${new Date(toMs)})`
      await sql`ANALYZE telemetry`
      log(`history bench: ${s.points} points copied in ${(insertMs / 1000).toFixed(1)} s`)
      const url =
        `${stack.apiUrl}/api/drones/${DRONE}/track?format=geojson` +
        `&from=${new Date(fromMs).toISOString()}&to=${new Date(toMs).toISOString()}`
      const token = await benchToken()
      const get = async () => {
        const started = performance.now()
        const res = await fetch(url, { signal, headers: { authorization: `Bearer ${token}` } })
        const body = await res.text()
        const ms = performance.now() - started
        if (!res.ok) throw new Error(`GET track: ${res.status} ${body.slice(0, 200)}`)
        return { ms, body }
      }
      const first = await get()
      const feature = JSON.parse(first.body) as { geometry: { coordinates: unknown[] } }
      const requestMs: number[] = []
      for (let i = 0; i < s.runs; i++) requestMs.push((await get()).ms)
      log(`history bench: ${requestMs.map((ms) => ms.toFixed(0)).join(', ')} ms`)
      return {
        ...s,
        insertS: insertMs / 1000,
        requestMs,
        p50Ms: median(requestMs),
        bytes: Buffer.byteLength(first.body),
        pointsReturned: feature.geometry.coordinates.length,
      }
    } finally {
      await sql.end()
    }
  } finally {
    await stack.stop()
  }
}

function* points(n: number, fromMs: number): Generator<CopyRow> {
  for (let seq = 0; seq < n; seq++)
    yield { fleetId: FLEET, droneId: DRONE, tsMs: fromMs + seq * 1_000, seq }
}

export function historyTable(r: HistoryResult): string {
  const f = (x: number, d = 0) =>
    x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
  return [
    `History: one drone's day at 1 Hz as GeoJSON from REST (api on Postgres, points inserted with COPY)`,
    '| measure | value |',
    '| --- | --- |',
    `| GET /api/drones/{id}/track?format=geojson, p50 of ${r.runs} (after one warm-up) | ${f(r.p50Ms)} ms |`,
    `| each run | ${r.requestMs.map((ms) => f(ms)).join(' / ')} ms |`,
    `| points asked / returned | ${f(r.points)} / ${f(r.pointsReturned)} |`,
    `| response size | ${f(r.bytes / 2 ** 20, 1)} MiB |`,
    `| COPY of the day's points | ${f(r.insertS, 1)} s |`,
    'Target: < 300 ms for the day.',
  ].join('\n')
}
