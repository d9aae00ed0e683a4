// The ingest's write path alone, without MQTT: the api's own writeBatch, batches of the
// api's default size written one after another as its batcher writes them. Beside the
// COPY ceiling it says what the database side of the ingest takes on this machine, and
// at what cost per row to Postgres and to the api: the end-to-end figures mix these with
// the broker's and the load generator's, on the same cores.
import { existsSync, readFileSync } from 'node:fs'
import { sql } from 'drizzle-orm'
import { loadConfig } from '../apps/api/src/config.ts'
import { openDatabase } from '../apps/api/src/db/client.ts'
import { TelemetryPartitions, rowsOf } from '../apps/api/src/db/partitions.ts'
import { DeliveryChanges } from '../apps/api/src/delivery/changes.ts'
import { DeliveryLifecycle } from '../apps/api/src/delivery/lifecycle.ts'
import type { IngestItem } from '../apps/api/src/ingest/items.ts'
import { writeBatch } from '../apps/api/src/ingest/writer.ts'
import { clockTicksPerS, cpuTicks } from './proc.ts'

export interface WriterCeiling {
  batchRows: number
  rowsPerS: number
  /**
   * CPU time of the writer's Postgres backend per row, µs (not the WAL writer's or
   * autovacuum's); NaN when that backend is not a process of this machine.
   */
  postgresUsPerRow: number
  /** CPU time of this process (the writer, drizzle, postgres.js) per row, µs. */
  writerUsPerRow: number
}

/**
 * Writes `rows` telemetry rows of `drones` drones (round robin, as a fleet at a steady
 * rate) into the database at `url`, after one unmeasured round that creates the drones,
 * so that every measured row also moves its drone, as in a fleet already flying.
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
    // The ingest's own lifecycle, with nobody to tell: positions only move ETAs here.
    const lifecycle = new DeliveryLifecycle(db, new DeliveryChanges(() => {}), async () => {}, {
      warn: () => {},
    })
    const batch = telemetryBatches(batchRows, drones)
    while (batch.made < drones) await writeBatch(db, partitions, lifecycle, batch())
    // Made before the clock starts: what is measured is the writer, not the fleet.
    const batches = Array.from({ length: Math.max(1, Math.round(rows / batchRows)) }, batch)
    const [backend] = rowsOf<{ pid: number }>(await db.execute(sql`SELECT pg_backend_pid() AS pid`))
    const backendTicks = localPostgres(backend!.pid) ? () => cpuTicks(backend!.pid) : () => NaN
    const ticks0 = backendTicks()
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    for (const items of batches) await writeBatch(db, partitions, lifecycle, items)
    const seconds = (performance.now() - t0) / 1_000
    const cpu = process.cpuUsage(cpu0)
    const written = batches.length * batchRows
    return {
      batchRows,
      rowsPerS: written / seconds,
      postgresUsPerRow: ((backendTicks() - ticks0) / clockTicksPerS() / written) * 1e6,
      writerUsPerRow: (cpu.user + cpu.system) / written,
    }
  } finally {
    await database.close()
  }
}

/** Whether `pid` is a Postgres process here (a server in a container has pids of its own). */
function localPostgres(pid: number): boolean {
  const comm = `/proc/${pid}/comm`
  return existsSync(comm) && readFileSync(comm, 'utf8').trim() === 'postgres'
}

/** Where the benched fleet flies: each drone circles 0.01° around this point, degrees. */
export const WRITER_CENTRE = { lat: 47.37, lon: 8.54 }
/** The fleet the writer's rows are of. */
export const WRITER_FLEET = 'writer'

/**
 * Batches of `batchRows` telemetry items of `drones` drones (round robin, as a fleet at
 * a steady rate, 1 Hz each from now), each drone on a circle of 0.01° around
 * WRITER_CENTRE; `made` counts the items made so far.
 */
export function telemetryBatches(
  batchRows: number,
  drones: number,
): (() => IngestItem[]) & { readonly made: number } {
  const from = Date.now()
  let n = 0
  const batch = (): IngestItem[] =>
    Array.from({ length: batchRows }, () => {
      const i = n % drones
      const droneId = `d${i}`
      const seq = Math.floor(n++ / drones)
      // Each drone its own phase: the fleet spreads round the circle.
      const a = ((seq + (i * 360) / drones) % 360) * (Math.PI / 180)
      const ts = from + seq * 1_000
      return {
        kind: 'telemetry',
        fleetId: WRITER_FLEET,
        droneId,
        receivedAt: new Date(ts),
        msg: {
          v: 1,
          ts,
          seq,
          lat: WRITER_CENTRE.lat + 0.01 * Math.sin(a),
          lon: WRITER_CENTRE.lon + 0.01 * Math.cos(a),
          altM: 120.5,
          speedMps: 12.5,
          headingDeg: seq % 360,
          batteryPct: 87.5,
          state: 'en_route',
        },
      }
    })
  return Object.defineProperty(batch, 'made', { get: () => n }) as typeof batch & {
    readonly made: number
  }
}
