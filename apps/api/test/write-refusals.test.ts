import { afterEach, describe, expect, it, vi } from 'vitest'
import { sql } from 'drizzle-orm'
import { droneEvents, rejectedMessages, stations } from '../src/db/schema.ts'
import type { Database } from '../src/db/client.ts'
import { TelemetryPartitions } from '../src/db/partitions.ts'
import { Batcher } from '../src/ingest/batcher.ts'
import type { IngestItem } from '../src/ingest/items.ts'
import { classifyWriteError } from '../src/ingest/write-errors.ts'
import { writeBatch } from '../src/ingest/writer.ts'
import { DATABASES, WAIT, lifecycleOn } from './helpers.ts'

// Issue #4 below the broker: items fed straight to the real batcher and writer. The
// schema refuses a NUL in free text since then; these items stand for any value it lets
// through that the database refuses.
const TS = 1_767_225_600_000
const event = (id: string, detail?: string): IngestItem => ({
  kind: 'drone-event',
  fleetId: 'f1',
  droneId: 'd1',
  receivedAt: new Date(TS),
  msg: { v: 1, ts: TS, id, type: 'battery.low', ...(detail !== undefined && { detail }) },
})
const station = (id: string, docked: string[]): IngestItem => ({
  kind: 'station-status',
  fleetId: 'f1',
  stationId: id,
  receivedAt: new Date(TS),
  msg: { v: 1, ts: TS, online: true, name: id, lat: 48.85, lon: 2.35, capacity: 4, docked },
})

describe.each(DATABASES)('refused writes on %s', (_name, open) => {
  const opened: Database[] = []
  afterEach(async () => {
    for (const d of opened.splice(0)) await d.close()
  })
  const database = async () => {
    const d = await open()
    opened.push(d)
    return d
  }
  const writer = (d: Database) => (items: IngestItem[]) =>
    writeBatch(d.db, new TelemetryPartitions(d.db), lifecycleOn(d.db), items)

  it('commits the rest of a batch and dead-letters, then acknowledges, each refused item', async () => {
    const d = await database()
    const refused: string[] = []
    const batcher = new Batcher(writer(d), {}, { refused: (_item, reason) => refused.push(reason) })
    const items = [
      event('e1'),
      event('e2', 'a\u0000b'), // text: 22021
      station('s1', ['d1']),
      event('e3'),
      station('s2', ['d\u0000']), // jsonb: 22P05
      event('e4'),
    ]
    // One batch (they wait for their acknowledgement, so it is flushed at once), and every
    // item resolves: the good ones committed, the bad ones dead-lettered.
    await Promise.all(items.map((item) => batcher.addAndWait(item)))
    await batcher.close()

    const ids = await d.db.select({ id: droneEvents.id }).from(droneEvents).orderBy(droneEvents.id)
    expect(ids.map((r) => r.id)).toEqual(['e1', 'e3', 'e4'])
    expect((await d.db.select({ id: stations.id }).from(stations)).map((r) => r.id)).toEqual(['s1'])
    expect(refused.map((r) => r.split(' ')[1])).toEqual(['22021', '22P05'])
    const dead = await d.db.select().from(rejectedMessages).orderBy(rejectedMessages.id)
    expect(dead.map((r) => [r.topic, r.reason.split(' ').slice(0, 2).join(' ')])).toEqual([
      ['fleet/f1/drones/d1/events', 'write_refused: 22021'],
      ['fleet/f1/stations/s2/status', 'write_refused: 22P05'],
    ])
    // The excerpt shows the NUL escaped, as the message was sent.
    expect(dead[0]!.excerpt).toContain('"detail":"a\\u0000b"')
  })

  it('retries while the database is away, and dead-letters nothing', async () => {
    const down = await database()
    await down.close() // every write now fails as a closed client does
    opened.pop()
    const up = await database()
    let current = down
    let failures = 0
    const batcher = new Batcher(
      (items) => writer(current)(items),
      { retryMs: { first: 10, max: 10 } },
      { failed: () => failures++ },
    )
    const acked = batcher.addAndWait(event('e1'))
    await vi.waitFor(() => expect(failures).toBeGreaterThanOrEqual(3), WAIT)
    expect(batcher.isHealthy).toBe(false)
    current = up
    await acked
    await batcher.close()
    expect(await up.db.select({ id: droneEvents.id }).from(droneEvents)).toEqual([{ id: 'e1' }])
    expect(await up.db.select().from(rejectedMessages)).toEqual([])
  })

  it("tells the database's refusals from its absence", async () => {
    const d = await database()
    const failure = async (query: Promise<unknown>) => {
      try {
        await query
      } catch (err) {
        return classifyWriteError(err)
      }
      throw new Error('the query succeeded')
    }
    expect(await failure(d.db.execute(sql`select 1/0`))).toMatchObject({
      kind: 'permanent',
      code: '22012',
      reason: 'write_refused: 22012 division by zero',
    })
    // Not about the rows: every row would fail alike, so it is waited out.
    expect(await failure(d.db.execute(sql`select * from no_such_table`))).toEqual({
      kind: 'transient',
    })
    await d.close()
    opened.pop()
    expect(await failure(d.db.execute(sql`select 1`))).toEqual({ kind: 'transient' })
  })
})

describe('write error classes', () => {
  const serverError = (code: string) =>
    Object.assign(new Error(`sqlstate ${code}`), { code, severity: 'ERROR' })
  it.each([
    ['08006', 'transient'], // connection failure
    ['53300', 'transient'], // too many connections
    ['57P01', 'transient'], // admin shutdown
    ['40001', 'transient'], // serialization failure
    ['40P01', 'transient'], // deadlock
    ['21000', 'permanent'], // cardinality violation
    ['22P05', 'permanent'], // untranslatable character
    ['23505', 'permanent'], // unique violation
    ['54000', 'permanent'], // program limit exceeded
  ])('%s is %s', (code, kind) => {
    expect(classifyWriteError(new Error('Failed query', { cause: serverError(code) })).kind).toBe(
      kind,
    )
  })
  it.each(['ECONNRESET', 'CONNECTION_CLOSED', 'EPIPE'])(
    'a client error %s is transient',
    (code) => {
      expect(classifyWriteError(Object.assign(new Error(code), { code })).kind).toBe('transient')
    },
  )
})
