import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { eq, sql } from 'drizzle-orm'
import { MAX_TS } from '@skyline/schemas'
import { openDatabase } from '../src/db/client.ts'
import type { Database } from '../src/db/client.ts'
import { rowsOf } from '../src/db/partitions.ts'
import { drones, rejectedMessages, telemetry } from '../src/db/schema.ts'
import { deviceClockRefusal } from '../src/ingest/device-clock.ts'
import type { IngestItem } from '../src/ingest/items.ts'
import {
  DATABASES,
  WAIT,
  buildApi,
  connectDrone,
  freshPostgres,
  pgliteDataDir,
  startBroker,
  telemetryAt,
} from './helpers.ts'

const DAY = 86_400_000
/** When drizzle-kit made migration 0004 (its journal): the migrator's record of it. */
const MIGRATION_0004_MS = (
  JSON.parse(readFileSync(new URL('../drizzle/meta/_journal.json', import.meta.url), 'utf8')) as {
    entries: { tag: string; when: number }[]
  }
).entries.find((e) => e.tag === '0004_device_clock')!.when
const RULE = { aheadMaxMs: 300_000, telemetryBehindMaxMs: 30 * DAY }
const NOW = Date.UTC(2026, 11, 3, 12)

const item = (kind: 'telemetry' | 'drone-status', ts: number): IngestItem =>
  kind === 'telemetry'
    ? { kind, fleetId: 'f1', droneId: 'd1', receivedAt: new Date(NOW), msg: telemetryAt(ts) }
    : {
        kind,
        fleetId: 'f1',
        droneId: 'd1',
        receivedAt: new Date(NOW),
        msg: { v: 1, ts, online: false, state: 'offline', reason: 'connection_lost' },
      }
const refusal = (i: IngestItem) =>
  deviceClockRefusal(i as Exclude<IngestItem, { kind: 'rejected' }>, RULE)

describe('the device clock rule', () => {
  it('takes a time up to the lead allowed, and refuses one beyond it, naming both', () => {
    expect(refusal(item('telemetry', NOW + 300_000))).toBeUndefined()
    expect(refusal(item('telemetry', NOW + 300_001))).toBe(
      'clock_skew: ts 2026-12-03T12:05:00.001Z is 300 s ahead of the time received (at most 300 s)',
    )
    expect(refusal(item('drone-status', MAX_TS))).toMatch(
      /^clock_skew: ts 9999-12-31T23:59:59\.999Z/,
    )
  })

  it('refuses telemetry older than the retention, but not an old last will', () => {
    expect(refusal(item('telemetry', NOW - 30 * DAY))).toBeUndefined()
    expect(refusal(item('telemetry', NOW - 30 * DAY - 1))).toMatch(/behind the time received/)
    // A will carries the time of its CONNECT, which may be long ago.
    expect(refusal(item('drone-status', NOW - 90 * DAY))).toBeUndefined()
  })
})

// Issue 14, item 3, through the real broker: one drone sending QoS 1 points, each on
// another far-future day, made a partition per day and stalled the writer for every
// fleet. Its points are dead letters now, and a healthy drone's flow on.
describe.each(DATABASES)('a drone with a bad clock on %s', (_name, open) => {
  let database: Database
  // What a test opened, closed after it in reverse order. Opened in the test, under its
  // longer timeout: a loaded machine can take most of a hook's 10 s to open PGlite alone.
  const opened: { close(): Promise<unknown> }[] = []
  const track = <T extends { close(): Promise<unknown> }>(thing: T) => (opened.push(thing), thing)
  afterEach(async () => {
    for (const thing of opened.splice(0).reverse()) await thing.close()
  })

  const partitions = async () =>
    rowsOf<{ name: string }>(
      await database.db.execute(sql`SELECT c.relname AS name FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'telemetry'`),
    ).map((r) => r.name)
  const seqsOf = async (droneId: string) =>
    (
      await database.db
        .select({ seq: telemetry.seq })
        .from(telemetry)
        .where(eq(telemetry.droneId, droneId))
    ).map((r) => r.seq)

  it('dead-letters its points without a partition for any of their days, while others flow', async () => {
    const broker = track(await startBroker())
    database = track(await open())
    track(await buildApi(broker.url, database, { DEVICE_CLOCK_AHEAD_MAX_S: '300' }))
    const bad = await connectDrone(broker.url, 'bad')
    const good = await connectDrone(broker.url, 'good')
    for (const drone of [bad, good]) track({ close: () => drone.endAsync() })
    const topic = (id: string) => `fleet/f1/drones/${id}/telemetry`
    const days = 200
    const now = Date.now()
    await Promise.all([
      ...Array.from({ length: days }, (_, i) =>
        bad.publishAsync(topic('bad'), JSON.stringify(telemetryAt(now + (i + 1) * DAY, i)), {
          qos: 1,
        }),
      ),
      ...Array.from({ length: 50 }, (_, i) =>
        good.publishAsync(topic('good'), JSON.stringify(telemetryAt(Date.now(), i)), { qos: 1 }),
      ),
      bad.publishAsync(topic('bad'), JSON.stringify(telemetryAt(MAX_TS, days)), { qos: 1 }),
    ])
    await vi.waitFor(async () => expect((await seqsOf('good')).length).toBe(50), WAIT)
    const letters = await vi.waitFor(async () => {
      const rows = await database.db.select().from(rejectedMessages)
      expect(rows).toHaveLength(days + 1)
      return rows
    }, WAIT)
    expect(await seqsOf('bad')).toEqual([])
    expect(letters.every((l) => l.reason.startsWith('clock_skew: '))).toBe(true)
    const tomorrow = new Date(now + DAY).toISOString().slice(0, 10).replaceAll('-', '')
    expect((await partitions()).filter((p) => p > `telemetry_p${tomorrow}`)).toEqual([])

    // Its clock set right, the same drone is tracked again.
    await bad.publishAsync(topic('bad'), JSON.stringify(telemetryAt(Date.now(), 999)), { qos: 1 })
    await vi.waitFor(async () => expect(await seqsOf('bad')).toEqual([999]), WAIT)
    const [row] = await database.db.select().from(drones).where(eq(drones.id, 'bad'))
    expect(row?.lastSeq).toBe(999)
  })
})

// A drone frozen by a far-future point before the rule existed moves again: migration
// 0004 puts such a position time back to when the drone was last heard.
describe('migration 0004 on a database from before the rule', () => {
  const reopeners: [string, () => Promise<[Database, () => Promise<Database>]>][] = [
    [
      'PGlite',
      async () => {
        const dataDir = await pgliteDataDir()
        return [await openDatabase({ dataDir }), () => openDatabase({ dataDir })]
      },
    ],
  ]
  const url = process.env.DATABASE_URL
  if (url !== undefined && url !== '')
    reopeners.push([
      'Postgres',
      async () => {
        const fresh = await freshPostgres(url)
        return [fresh, () => openDatabase({ url: fresh.url, dataDir: '' })]
      },
    ])

  it.each(reopeners)('unfreezes a drone on %s', async (_name, make) => {
    const [first, reopen] = await make()
    try {
      const heard = new Date(Date.now() - 60_000)
      await first.db.insert(drones).values([
        { fleetId: 'f1', id: 'frozen', positionAt: new Date(MAX_TS), lastSeenAt: heard },
        { fleetId: 'f1', id: 'fine', positionAt: heard, lastSeenAt: heard },
      ])
      // As if 0004 had not run yet: drizzle applies what comes after its last record.
      await first.db.execute(sql`DELETE FROM drizzle.__drizzle_migrations
        WHERE created_at >= ${MIGRATION_0004_MS}`)
      if (first.kind === 'pglite') await first.close()
      const again = await reopen()
      try {
        const rows = await again.db.select().from(drones).orderBy(drones.id)
        expect(rows.map((r) => [r.id, r.positionAt?.getTime()])).toEqual([
          ['fine', heard.getTime()],
          ['frozen', heard.getTime()],
        ])
      } finally {
        await again.close()
      }
    } finally {
      if (first.kind === 'postgres') await first.close()
    }
  })
})
