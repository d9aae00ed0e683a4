// The ingest's write path alone, without MQTT: the api's own writeBatch, batches of the
// api's default size written one after another as its batcher writes them. Beside the
// COPY ceiling it says what the database side of the ingest takes on this machine, and
// at what cost per row to Postgres and to the api.
import { sql } from 'drizzle-orm'
import { loadConfig } from '../apps/api/src/config.ts'
import { openDatabase } from '../apps/api/src/db/client.ts'
import { TelemetryPartitions, rowsOf } from '../apps/api/src/db/partitions.ts'
import { EtaEstimator } from '../apps/api/src/ingest/eta.ts'
import type { IngestItem } from '../apps/api/src/ingest/items.ts'
import { writeBatch } from '../apps/api/src/ingest/writer.ts'
import { clockTicksPerS, cpuTicks } from './proc.ts'

export interface WriterCeiling {
  batchRows: number
  rowsPerS: number
  /** CPU time of the Postgres backend per row, µs. */
  postgresUsPerRow: number
  /** CPU time of this process (the writer, drizzle, postgres.js) per row, µs. */
  writerUsPerRow: number
}

/**
 * Writes `rows` telemetry rows of `drones` drones (round robin, as a fleet at a steady
 * rate) into the database at `url`, after one unmeasured round that creates the drones.
 */
export async function writerCeiling(
  url: string,
  rows: number,
  drones: number,
): Promise<WriterCeiling> {
  // The api's default batch size, from its own configuration.
  const batchRows = loadConfig({}).INGEST_BATCH_MAX
  // One connection: its backend is the one whose CPU time is read.
  const database = await openDatabase({ url, dataDir: '', poolSize: 1 })
  try {
    const { db } = database
    const partitions = new TelemetryPartitions(db)
    const eta = new EtaEstimator()
    const from = Date.now()
    let n = 0
    const batch = (): IngestItem[] =>
      Array.from({ length: batchRows }, () => {
        const seq = Math.floor(n / drones)
        const a = (seq % 360) * (Math.PI / 180)
        const ts = from + seq * 1_000
        return {
          kind: 'telemetry',
          fleetId: 'writer',
          droneId: `d${n++ % drones}`,
          receivedAt: new Date(ts),
          msg: {
            v: 1,
            ts,
            seq,
            lat: 47.37 + 0.01 * Math.sin(a),
            lon: 8.54 + 0.01 * Math.cos(a),
            altM: 120.5,
            speedMps: 12.5,
            headingDeg: seq % 360,
            batteryPct: 87.5,
            state: 'en_route',
          },
        }
      })
    while (n < drones) await writeBatch(db, partitions, eta, batch())
    const [backend] = rowsOf<{ pid: number }>(await db.execute(sql`SELECT pg_backend_pid() AS pid`))
    const batches = Math.max(1, Math.round(rows / batchRows))
    const ticks0 = cpuTicks(backend!.pid)
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    for (let i = 0; i < batches; i++) await writeBatch(db, partitions, eta, batch())
    const seconds = (performance.now() - t0) / 1_000
    const cpu = process.cpuUsage(cpu0)
    const written = batches * batchRows
    return {
      batchRows,
      rowsPerS: written / seconds,
      postgresUsPerRow: ((cpuTicks(backend!.pid) - ticks0) / clockTicksPerS() / written) * 1e6,
      writerUsPerRow: (cpu.user + cpu.system) / written,
    }
  } finally {
    await database.close()
  }
}
