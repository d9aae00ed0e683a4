import { afterEach, describe, expect, it } from 'vitest'
import { sql } from 'drizzle-orm'
import type { Database } from '../src/db/client.ts'
import { TelemetryPartitions, rowsOf } from '../src/db/partitions.ts'
import type { IngestItem } from '../src/ingest/items.ts'
import { writeBatch } from '../src/ingest/writer.ts'
import { DATABASES, lifecycleOn } from './helpers.ts'

const TS = 1_767_225_600_000
const DRONES = 1_000

/** Telemetry of drone `droneId` at second `s`. */
const point = (droneId: string, s: number, lat = 47.37 + s * 1e-4): IngestItem => ({
  kind: 'telemetry',
  fleetId: 'f1',
  droneId,
  receivedAt: new Date(TS + s * 1_000),
  msg: {
    v: 1,
    ts: TS + s * 1_000,
    seq: s,
    lat,
    lon: 8.54,
    altM: 120,
    speedMps: 12,
    headingDeg: 90,
    batteryPct: 90 - s,
    state: 'en_route',
  },
})

/** Telemetry of every drone at second `s`. */
const tick = (s: number): IngestItem[] =>
  Array.from({ length: DRONES }, (_, i) => point(`d${i}`, s))

describe.each(DATABASES)('drone positions on %s', (_name, open) => {
  let database: Database | undefined
  afterEach(async () => {
    await database?.close()
    database = undefined
  })

  const write = (d: Database, items: IngestItem[]) =>
    writeBatch(d.db, new TelemetryPartitions(d.db), lifecycleOn(d.db), items)
  const position = async (d: Database, id: string) => {
    const [row] = rowsOf<{ lat: number; seq: number }>(
      await d.db.execute(sql`SELECT lat, last_seq AS seq FROM drones WHERE id = ${id}`),
    )
    return row
  }

  it("takes each drone's newest point of a batch, and of equal times the last one", async () => {
    database = await open()
    await write(database, [point('a', 3), point('b', 5, 1), point('a', 1), point('b', 5, 2)])
    expect(await position(database, 'a')).toEqual({ lat: 47.37 + 3e-4, seq: 3 })
    expect(await position(database, 'b')).toEqual({ lat: 2, seq: 5 })
  })

  it('stores a late point but does not move the drone back to it', async () => {
    database = await open()
    await write(database, [point('a', 4)])
    await write(database, [point('a', 2), point('a', 4)]) // a late point, and a redelivery
    expect(await position(database, 'a')).toEqual({ lat: 47.37 + 4e-4, seq: 4 })
    const [{ n }] = rowsOf<{ n: number }>(
      await database.db.execute(sql`SELECT count(*)::int AS n FROM telemetry WHERE drone_id = 'a'`),
    ) as [{ n: number }]
    expect(n).toBe(2)
  })

  it('counts a late point as heard: last_seen_at follows the api clock, not the point', async () => {
    // Issue 14, item 3: a point dated far ahead froze last_seen_at, so the drone read
    // stale while it kept sending. The time heard is the api's, whatever the point's ts.
    database = await open()
    await write(database, [point('a', 4)])
    const late = point('a', 2)
    const heardAt = new Date(TS + 60_000)
    await write(database, [{ ...late, receivedAt: heardAt }])
    expect(await position(database, 'a')).toEqual({ lat: 47.37 + 4e-4, seq: 4 })
    const [row] = rowsOf<{ seen: string | Date; at: string | Date }>(
      await database.db.execute(
        sql`SELECT last_seen_at AS seen, position_at AS at FROM drones WHERE id = 'a'`,
      ),
    )
    expect(new Date(row!.seen).getTime()).toBe(heardAt.getTime())
    expect(new Date(row!.at).getTime()).toBe(TS + 4_000)
  })

  // Every telemetry message rewrites its drone's row (0003_drones_fillfactor.sql). No
  // indexed column changes, so an update that stays on its row's page is HOT: read from
  // the rows' pages and the key's size rather than from the statistics collector, whose
  // reports come late and differ between Postgres versions.
  it('updates the latest positions in place (HOT), leaving the primary key alone', async () => {
    database = await open()
    const { db } = database
    const layout = async () => {
      const rows = rowsOf<{ id: string; page: number; key: number }>(
        await db.execute(sql`
          SELECT id, (ctid::text::point)[0]::int AS page,
            pg_relation_size('drones_fleet_id_id_pk')::int AS key
          FROM drones`),
      )
      return { pages: new Map(rows.map((r) => [r.id, r.page])), keyBytes: rows[0]!.key }
    }
    await write(database, tick(0))
    const before = await layout()
    const seconds = 10
    for (let s = 1; s < seconds; s++) await write(database, tick(s))
    const after = await layout()
    expect(await position(database, 'd7')).toEqual({ lat: 47.37 + (seconds - 1) * 1e-4, seq: 9 })
    const stayed = [...before.pages].filter(([id, page]) => after.pages.get(id) === page)
    expect(after.pages.size).toBe(DRONES)
    expect(stayed.length / DRONES).toBeGreaterThan(0.95)
    expect(after.keyBytes).toBe(before.keyBytes)
  })
})
