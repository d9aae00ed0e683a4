import { refusedItem } from './dead-letter.ts'
import type { IngestItem } from './items.ts'
import { classifyWriteError } from './write-errors.ts'
import type { WriteFailure } from './write-errors.ts'

export interface BatcherOptions {
  /** Items written in one transaction at most. Default 2,000. */
  maxItems?: number
  /** Longest an item waits for its batch to fill, ms. Default 50. */
  maxDelayMs?: number
  /** Unacknowledged QoS 0 items kept during a database outage; older ones are dropped. Default 200,000. */
  maxBuffered?: number
  /** Retry backoff after a failed write, ms: doubles from first to max. */
  retryMs?: { first: number; max: number }
  /** Tells a refusal of the rows (split the batch) from an outage (retry). Default: by SQLSTATE. */
  classify?: (err: unknown) => WriteFailure
}

export interface BatcherHooks {
  flushed?(items: IngestItem[], ms: number): void
  failed?(err: unknown, attempt: number): void
  healthChanged?(healthy: boolean): void
  dropped?(items: number): void
  /** An item the database refused, written to the dead-letter table instead. */
  refused?(item: IngestItem, reason: string): void
  /** An item refused even as a dead letter: acknowledged and gone (never expected). */
  lost?(item: IngestItem, err: unknown): void
}

interface Pending {
  item: IngestItem
  /** Set for QoS 1/2 messages: acknowledged to the broker once committed. */
  done?: () => void
}

/**
 * Collects ingest items and writes them in batches, one transaction at a time, in
 * arrival order: bounded in size (maxItems) and in delay (maxDelayMs), flushed at
 * once when a message waits for its acknowledgement. A write that fails for the database
 * (an outage) is retried with backoff, keeping its items, until the database is back. A
 * write whose rows are refused (issue #4: a value Postgres cannot store) would fail the
 * same way forever, so the batch is split in halves until each culprit stands alone; the
 * rest commits, the culprit goes to the dead-letter table and is acknowledged.
 */
export class Batcher {
  private buffer: Pending[] = []
  private timer: NodeJS.Timeout | undefined
  private writing = false
  /** Items at the head of the buffer that the write under way holds. */
  private inFlight = 0
  /** A failed write waits out its backoff: nothing may flush earlier. */
  private retrying = false
  /** A flush is already queued for the next turn of the event loop. */
  private queued = false
  private urgent = false
  /** discard() was called while a write was under way: if it fails, it is dropped. */
  private discarding = false
  private attempt = 0
  private closed = false
  private healthy = true
  private readonly maxItems: number
  private readonly maxDelayMs: number
  private readonly maxBuffered: number
  private readonly retryMs: { first: number; max: number }
  private readonly classify: (err: unknown) => WriteFailure

  constructor(
    private readonly write: (items: IngestItem[]) => Promise<void>,
    opts: BatcherOptions = {},
    private readonly hooks: BatcherHooks = {},
  ) {
    this.maxItems = opts.maxItems ?? 2_000
    this.maxDelayMs = opts.maxDelayMs ?? 50
    this.maxBuffered = opts.maxBuffered ?? 200_000
    this.retryMs = opts.retryMs ?? { first: 100, max: 5_000 }
    this.classify = opts.classify ?? classifyWriteError
  }

  get isHealthy(): boolean {
    return this.healthy
  }

  get buffered(): number {
    return this.buffer.length
  }

  /** Queues an item that needs no acknowledgement (QoS 0). */
  add(item: IngestItem): void {
    this.buffer.push({ item })
    if (this.buffer.length > this.maxBuffered) this.shed()
    this.schedule()
  }

  /** Queues an item and resolves once it is committed (QoS 1/2: then acknowledge it). */
  addAndWait(item: IngestItem): Promise<void> {
    return new Promise((resolve) => {
      this.buffer.push({ item, done: resolve })
      this.urgent = true
      this.schedule()
    })
  }

  /**
   * Forgets what is buffered, and the write under way if it fails: this instance no
   * longer leads. Nothing forgotten is acknowledged; the broker redelivers it to the
   * instance that took over the session.
   */
  discard(): void {
    this.buffer.splice(this.inFlight)
    this.discarding = this.inFlight > 0
    clearTimeout(this.timer)
    this.timer = undefined
    this.retrying = false
    this.setHealthy(true)
  }

  /**
   * Writes what is buffered, retrying with the same backoff, until it is written or
   * `timeoutMs` passed; then stops for good (no write starts after close resolves).
   */
  async close(timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
    while (this.buffer.length > 0 && Date.now() < deadline) {
      if (this.writing) {
        await new Promise((r) => setTimeout(r, 10))
        continue
      }
      const ok = await this.flush(true)
      if (!ok)
        await new Promise((r) =>
          setTimeout(r, Math.min(this.backoffMs(), Math.max(0, deadline - Date.now()))),
        )
    }
  }

  private schedule(): void {
    if (this.writing || this.closed || this.retrying) return
    if (this.urgent || this.buffer.length >= this.maxItems) {
      clearTimeout(this.timer)
      this.timer = undefined
      if (this.queued) return
      this.queued = true
      setImmediate(() => {
        this.queued = false
        void this.flush()
      })
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined
        void this.flush()
      }, this.maxDelayMs)
    }
  }

  /** Writes one batch; true when it was written (or there was nothing to write). */
  private async flush(closing = false): Promise<boolean> {
    if (this.writing || this.buffer.length === 0 || (this.closed && !closing)) return true
    if (this.retrying && !closing) return false
    this.writing = true
    this.urgent = false
    const batch = this.buffer.slice(0, this.maxItems)
    this.inFlight = batch.length
    let ok = false
    try {
      await this.commit(batch)
      ok = true
    } catch (err) {
      if (this.discarding) {
        this.buffer.splice(0, this.inFlight) // nothing left to retry
        ok = true
      } else {
        this.attempt++
        this.hooks.failed?.(err, this.attempt)
        this.setHealthy(false)
      }
    }
    this.discarding = false
    if (ok) {
      this.attempt = 0
      this.setHealthy(true)
    }
    this.writing = false
    this.inFlight = 0
    if (this.closed) return ok
    if (!ok) {
      this.retrying = true
      clearTimeout(this.timer)
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.retrying = false
        void this.flush()
      }, this.backoffMs())
      return false
    }
    if (this.buffer.some((p) => p.done !== undefined)) this.urgent = true
    if (this.buffer.length > 0) this.schedule()
    return true
  }

  /**
   * Writes `part`, the head of the buffer, and settles what commits. Rows refused for
   * their values split it in halves, written in order, down to the single culprit, which
   * becomes a dead letter: about 2·log2(n) writes for a culprit among n. An outage is
   * thrown to the caller, which retries from the first item not yet committed.
   */
  private async commit(part: Pending[]): Promise<void> {
    const started = performance.now()
    let failure: Extract<WriteFailure, { kind: 'permanent' }> | undefined
    try {
      await this.write(part.map((p) => p.item))
    } catch (err) {
      const f = this.classify(err)
      if (f.kind === 'transient') throw err
      failure = f
    }
    if (failure === undefined) return this.settle(part, started)
    if (part.length > 1) {
      const half = Math.ceil(part.length / 2)
      await this.commit(part.slice(0, half))
      return this.commit(part.slice(half))
    }
    const culprit = part[0]!
    const letter = refusedItem(culprit.item, failure.reason)
    try {
      await this.write([letter])
    } catch (err) {
      if (this.classify(err).kind === 'transient') throw err
      this.hooks.lost?.(culprit.item, err)
      return this.settle(part, started, [])
    }
    this.hooks.refused?.(culprit.item, failure.reason)
    return this.settle(part, started, [letter])
  }

  /** `part` (the buffer's head) is committed: out of the buffer, and acknowledged. */
  private settle(part: Pending[], started: number, written = part.map((p) => p.item)): void {
    this.buffer.splice(0, part.length)
    this.inFlight -= part.length
    if (written.length > 0) this.hooks.flushed?.(written, performance.now() - started)
    for (const p of part) p.done?.()
  }

  private backoffMs(): number {
    return Math.min(this.retryMs.max, this.retryMs.first * 2 ** Math.max(0, this.attempt - 1))
  }

  /**
   * During an outage: drop the oldest items that nobody waits for (QoS 0 telemetry),
   * never one of the write under way (its success removes it by position).
   */
  private shed(): void {
    const excess = this.buffer.length - this.maxBuffered
    let dropped = 0
    this.buffer = this.buffer.filter((p, i) => {
      if (
        i >= this.inFlight &&
        dropped < excess &&
        p.done === undefined &&
        p.item.kind === 'telemetry'
      ) {
        dropped++
        return false
      }
      return true
    })
    if (dropped > 0) this.hooks.dropped?.(dropped)
  }

  private setHealthy(healthy: boolean): void {
    if (healthy === this.healthy) return
    this.healthy = healthy
    this.hooks.healthChanged?.(healthy)
  }
}
