// The ingest's writer with the geofence check (issue 18, item 4): every batch goes through
// the index's breachesIn (the per-telemetry lookup the alerts will consume) and then
// through the api's own writeBatch, with 1,000 zones of the fleet against none. The two
// alternate in rounds on one database, so that neither gets the fresher table. Also run
// alone: `npx tsx bench/geofence-writer.ts [rows] [drones]` (DATABASE_URL's server).
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../apps/api/src/config.ts'
import { openDatabase } from '../apps/api/src/db/client.ts'
import { TelemetryPartitions } from '../apps/api/src/db/partitions.ts'
import { DeliveryChanges } from '../apps/api/src/delivery/changes.ts'
import { DeliveryLifecycle } from '../apps/api/src/delivery/lifecycle.ts'
import { GeofenceIndex } from '../apps/api/src/geofence/index.ts'
import type { Zone } from '../apps/api/src/geofence/index.ts'
import type { IngestItem } from '../apps/api/src/ingest/items.ts'
import { writeBatch } from '../apps/api/src/ingest/writer.ts'
import { benchDatabase } from './stack.ts'
import { WRITER_CENTRE, WRITER_FLEET, telemetryBatches } from './writer-ceiling.ts'

export interface GeofenceWriterResult {
  zones: number
  /** Vertices of each zone (a closed ring). */
  verticesPerZone: number
  batchRows: number
  rows: number
  /** Rows/s through breachesIn + writeBatch, without zones and with them. */
  rowsPerSWithout: number
  rowsPerSWith: number
  /** rowsPerSWith / rowsPerSWithout. */
  ratio: number
  /** breachesIn alone over the same items: µs per telemetry item, with the zones. */
  lookupUsPerItem: number
  /** Share of the items inside at least one active zone. */
  hitShare: number
}

/** Rounds of each kind, alternated (without, with, without, …). */
const ROUNDS = 4
const ZONE_VERTICES = 17

/**
 * `zones` no-fly zones and areas of the benched fleet: 16-sided polygons of 100 to 700 m
 * radius scattered (seeded) over ±0.15° around the fleet, a tenth of them with an active
 * window and a tenth with one already over, so that some of the drones' circles cross
 * some of them.
 */
export function benchZones(zones: number, now = Date.now()): Zone[] {
  let seed = 42
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31
  const at = new Date(now)
  return Array.from({ length: zones }, (_, i): Zone => {
    const lat = WRITER_CENTRE.lat + (random() - 0.5) * 0.3
    const lon = WRITER_CENTRE.lon + (random() - 0.5) * 0.3
    const r = 0.001 + random() * 0.006
    const ring = Array.from({ length: ZONE_VERTICES - 1 }, (_, k): [number, number] => {
      const a = (k / (ZONE_VERTICES - 1)) * 2 * Math.PI
      return [lon + (r * Math.cos(a)) / Math.cos((lat * Math.PI) / 180), lat + r * Math.sin(a)]
    })
    const window =
      i % 10 === 0
        ? { activeFrom: new Date(now - 3_600_000), activeUntil: new Date(now + 86_400_000) }
        : i % 10 === 1
          ? { activeFrom: new Date(now - 7_200_000), activeUntil: new Date(now - 3_600_000) }
          : { activeFrom: null, activeUntil: null }
    return {
      id: `zone-${i}`,
      fleetId: WRITER_FLEET,
      name: `zone ${i}`,
      kind: i % 3 === 0 ? 'area' : 'no_fly',
      geometry: { type: 'Polygon', coordinates: [[...ring, ring[0]!]] },
      ...window,
      notifyOnEnterLeave: false,
      createdAt: at,
      updatedAt: at,
    }
  })
}

export async function geofenceWriter(
  url: string,
  rows: number,
  drones: number,
  zones = 1_000,
): Promise<GeofenceWriterResult> {
  const batchRows = loadConfig({}).INGEST_BATCH_MAX
  const database = await openDatabase({ url, dataDir: '', poolSize: 1 })
  try {
    const { db } = database
    const partitions = new TelemetryPartitions(db)
    const lifecycle = new DeliveryLifecycle(db, new DeliveryChanges(() => {}), async () => {}, {
      warn: () => {},
    })
    const none = new GeofenceIndex()
    const some = new GeofenceIndex()
    some.replaceAll(benchZones(zones))
    const batch = telemetryBatches(batchRows, drones)
    // The drones' rows first, unmeasured: every measured row also moves its drone.
    while (batch.made < drones) await writeBatch(db, partitions, lifecycle, batch())
    // The lookup compiled, as in an api that has run a while (the first batches through
    // it cost ten times the later ones); these items are not written.
    for (let i = 0; i < 10; i++) some.breachesIn(batch())
    const perRound = Math.max(1, Math.round(rows / batchRows / (2 * ROUNDS)))
    let hits = 0
    const round = async (index: GeofenceIndex, batches: IngestItem[][]): Promise<number> => {
      const t0 = performance.now()
      for (const items of batches) {
        hits += index.breachesIn(items).length
        await writeBatch(db, partitions, lifecycle, items)
      }
      return performance.now() - t0
    }
    const ms = { without: 0, with: 0 }
    let lookupMs = 0
    let looked = 0
    let inside = 0
    for (let r = 0; r < ROUNDS; r++) {
      // Made before each clock starts: what is measured is the check and the writer.
      ms.without += await round(none, Array.from({ length: perRound }, batch))
      const batches = Array.from({ length: perRound }, batch)
      const t0 = performance.now()
      for (const items of batches) inside += some.breachesIn(items).length
      lookupMs += performance.now() - t0
      looked += perRound * batchRows
      ms.with += await round(some, batches)
    }
    if (hits !== inside) throw new Error(`breachesIn gave ${hits} hits, then ${inside}`)
    const measured = perRound * batchRows * ROUNDS
    const rowsPerSWithout = measured / (ms.without / 1_000)
    const rowsPerSWith = measured / (ms.with / 1_000)
    return {
      zones,
      verticesPerZone: ZONE_VERTICES,
      batchRows,
      rows: 2 * measured,
      rowsPerSWithout,
      rowsPerSWith,
      ratio: rowsPerSWith / rowsPerSWithout,
      lookupUsPerItem: (lookupMs * 1_000) / looked,
      hitShare: inside / looked,
    }
  } finally {
    await database.close()
  }
}

/** The bench's table row (bench/e2e.ts). */
export function geofenceWriterRow(g: GeofenceWriterResult): string {
  const f = (x: number, d = 0) =>
    x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
  return (
    `| the ingest's writer with the geofence check, ${f(g.zones)} zones against none | ` +
    `${f(g.rowsPerSWith)} against ${f(g.rowsPerSWithout)} rows/s: ${f(g.ratio * 100, 1)}% (goal ≥ 90%); ` +
    `breachesIn ${f(g.lookupUsPerItem, 2)} µs per telemetry, ${f(g.hitShare * 100, 1)}% inside a zone; ` +
    `${f(g.rows)} rows in ${f(g.batchRows)}-row batches, ${ROUNDS} rounds each, alternated |`
  )
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const rows = Number(process.argv[2] ?? 200_000)
  const drones = Number(process.argv[3] ?? 10_000)
  const database = await benchDatabase()
  try {
    const result = await geofenceWriter(database.url, rows, drones)
    console.log(JSON.stringify(result, null, 2))
    console.log(geofenceWriterRow(result))
  } finally {
    await database.drop()
  }
}
