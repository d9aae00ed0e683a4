import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Batcher } from '../src/ingest/batcher.ts'
import type { IngestItem } from '../src/ingest/items.ts'

// The batcher alone, with a write function that fails or succeeds on demand and fake
// timers for its delays and backoff.
const point = (seq: number): IngestItem => ({
  kind: 'telemetry',
  fleetId: 'f1',
  droneId: 'd1',
  receivedAt: new Date(0),
  msg: {
    v: 1,
    ts: seq,
    seq,
    lat: 0,
    lon: 0,
    altM: 0,
    speedMps: 0,
    headingDeg: 0,
    batteryPct: 50,
    state: 'idle',
  },
})

const seqOf = (item: IngestItem) => (item.kind === 'telemetry' ? item.msg.seq : -1)
/** What postgres.js or PGlite throws for a value the column cannot hold. */
const outOfRange = () =>
  Object.assign(new Error('value out of range for type integer'), {
    code: '22003',
    severity: 'ERROR',
  })

describe('ingest batcher', () => {
  beforeEach(() => vi.useFakeTimers())
  afterEach(() => vi.useRealTimers())

  it('waits out its backoff after a failed write, however much keeps arriving', async () => {
    const attempts: number[] = []
    const batcher = new Batcher(
      async (items) => {
        attempts.push(items.length)
        throw new Error('database down')
      },
      { maxItems: 100, maxDelayMs: 10, retryMs: { first: 1_000, max: 5_000 } },
    )
    for (let i = 0; i < 5_000; i++) batcher.add(point(i))
    await vi.advanceTimersByTimeAsync(900)
    expect(attempts).toHaveLength(1)
    for (let i = 0; i < 5_000; i++) batcher.add(point(i))
    await vi.advanceTimersByTimeAsync(200) // the first retry is due at 1 s
    expect(attempts).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(1_700) // the next one 2 s after the second
    expect(attempts).toHaveLength(2)
    expect(batcher.isHealthy).toBe(false)
  })

  it('acknowledges only what was committed, and nothing is written after close', async () => {
    let failing = true
    const written: number[] = []
    const batcher = new Batcher(
      async (items) => {
        if (failing) throw new Error('down')
        written.push(...items.map((i) => (i.kind === 'telemetry' ? i.msg.seq : -1)))
      },
      { maxItems: 10, maxDelayMs: 5, retryMs: { first: 100, max: 100 } },
    )
    let acked = false
    const ack = batcher.addAndWait(point(1)).then(() => (acked = true))
    await vi.advanceTimersByTimeAsync(500)
    expect(acked).toBe(false)
    failing = false
    await vi.advanceTimersByTimeAsync(200)
    await ack
    expect(written).toEqual([1])

    batcher.add(point(2))
    const closing = batcher.close(1_000)
    await vi.advanceTimersByTimeAsync(100)
    await closing
    const after = written.length
    batcher.add(point(3))
    await vi.advanceTimersByTimeAsync(1_000)
    expect(written.length).toBe(after)
    expect(written).toEqual([1, 2])
  })

  it('sheds old QoS 0 telemetry when full, never what is being written or awaited', async () => {
    let release: () => void = () => {}
    const batches: number[][] = []
    const dropped: number[] = []
    const batcher = new Batcher(
      (items) => {
        batches.push(items.map((i) => (i.kind === 'telemetry' ? i.msg.seq : -1)))
        return new Promise<void>((r) => (release = r))
      },
      { maxItems: 3, maxDelayMs: 5, maxBuffered: 5 },
      { dropped: (n) => dropped.push(n) },
    )
    for (let i = 0; i < 3; i++) batcher.add(point(i)) // the first write takes 0, 1, 2
    await vi.advanceTimersByTimeAsync(10)
    const waited = batcher.addAndWait(point(100))
    for (let i = 3; i < 10; i++) batcher.add(point(i))
    expect(dropped.reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
    release()
    await vi.advanceTimersByTimeAsync(10)
    while (batches.flat().length < 3 + 5 - 3 && batches.length < 10) {
      release()
      await vi.advanceTimersByTimeAsync(10)
    }
    release()
    await vi.advanceTimersByTimeAsync(10)
    await waited
    expect(batches[0]).toEqual([0, 1, 2])
    expect(batches.flat()).toContain(100)
  })

  it('splits a refused batch down to its culprit, in order, and resumes after an outage', async () => {
    const written: number[][] = []
    const culprits: number[] = []
    let outage = true
    const batcher = new Batcher(
      async (items) => {
        const seqs = items.map(seqOf)
        if (seqs.includes(3)) throw outOfRange()
        // The database goes away once, midway through the split.
        if (seqs.includes(6) && outage) {
          outage = false
          throw new Error('connection closed')
        }
        written.push(seqs)
      },
      { maxItems: 100, maxDelayMs: 5, retryMs: { first: 100, max: 100 } },
      { refused: (item) => culprits.push(seqOf(item)) },
    )
    const acked: number[] = []
    const acks = Array.from({ length: 8 }, (_, i) =>
      batcher.addAndWait(point(i)).then(() => acked.push(i)),
    )
    await vi.advanceTimersByTimeAsync(10)
    expect(acked).toEqual([0, 1, 2, 3]) // committed or dead-lettered; 4-7 wait for the retry
    await vi.advanceTimersByTimeAsync(100)
    await Promise.all(acks)
    expect(acked).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(culprits).toEqual([3])
    // The dead letter (-1) takes the culprit's place: arrival order holds.
    expect(written).toEqual([[0, 1], [2], [-1], [4, 5, 6, 7]])
    expect(batcher.isHealthy).toBe(true)
  })
})
