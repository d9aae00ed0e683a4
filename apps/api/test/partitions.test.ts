import { afterEach, describe, expect, it } from 'vitest'
import { MAX_TS } from '@skyline/schemas'
import { sql } from 'drizzle-orm'
import type { Database } from '../src/db/client.ts'
import { TelemetryPartitions, rowsOf } from '../src/db/partitions.ts'
import { telemetry } from '../src/db/schema.ts'
import { DATABASES } from './helpers.ts'

const DAY = 86_400_000
const row = (ts: Date, seq: number) => ({
  fleetId: 'f1',
  droneId: 'd1',
  ts,
  seq,
  lat: 1,
  lon: 2,
  altM: 3,
  speedMps: 4,
  headingDeg: 5,
  batteryPct: 6,
  state: 'idle',
  receivedAt: ts,
})

describe.each(DATABASES)('telemetry partitions on %s', (_name, open) => {
  let database: Database | undefined
  afterEach(async () => database?.close())

  const partitionNames = async (db: Database) =>
    rowsOf<{ name: string }>(
      await db.db
        .execute(sql`SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'telemetry' ORDER BY 1`),
    ).map((r) => r.name)

  it('creates a partition per UTC day as data arrives, and drops whole days past retention', async () => {
    database = await open()
    const partitions = new TelemetryPartitions(database.db)
    const today = new Date(Math.floor(Date.now() / DAY) * DAY + 3_600_000)
    const times = [new Date(today.getTime() - 40 * DAY), new Date(today.getTime() - 2 * DAY), today]
    await partitions.ensureFor(times)
    await database.db.insert(telemetry).values(times.map((t, i) => row(t, i)))
    expect(await partitionNames(database)).toHaveLength(3)

    const dropped = await partitions.dropOlderThan(new Date(today.getTime() - 30 * DAY))
    expect(dropped).toEqual([
      `telemetry_p${times[0]!.toISOString().slice(0, 10).replaceAll('-', '')}`,
    ])
    const left = await database.db.select({ seq: telemetry.seq }).from(telemetry)
    expect(left.map((r) => r.seq).sort()).toEqual([1, 2])
    // A day dropped can be written again: it is created anew.
    await partitions.ensureFor([times[0]!])
    await database.db.insert(telemetry).values(row(times[0]!, 9))
  })
  it('stores telemetry of the last day a payload may carry', async () => {
    database = await open()
    const last = new Date(MAX_TS)
    await new TelemetryPartitions(database.db).ensureFor([last])
    await database.db.insert(telemetry).values(row(last, 1))
    expect(await partitionNames(database)).toEqual(['telemetry_p99991231'])
  })
})
