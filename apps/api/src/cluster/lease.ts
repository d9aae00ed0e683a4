import { sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { rowsOf } from '../db/partitions.ts'
import type { Tx } from '../delivery/lifecycle.ts'

/** A write of the leader's that another instance's lease now forbids. */
export class LeaseLostError extends Error {
  readonly code = 'lease_lost'
}

export interface LeaseListener {
  /** This instance leads from now on, with this fencing epoch. */
  gained(epoch: number): void
  /** It no longer does (another holds the lease, or it could not renew in time). */
  lost(reason: string): void
}

export interface LeaseOptions {
  /** How long a lease holds without renewal, ms; renewed every third of it. */
  ttlMs: number
  /** Which lease. Default 'leader'. */
  name?: string
  /** Told when a round fails (the database is away). */
  onError?: (err: unknown) => void
}

/**
 * One instance's side of the leader lease (the `leader_lease` row): it takes the lease
 * when it is free or lapsed, renews it while it holds it, and gives it up on stop. The
 * expiry is the database's clock; this side counts its own time from the start of each
 * renewal that succeeded, so it stops leading before the database lets another take
 * over, even when it cannot reach the database at all. A new holder raises the epoch;
 * `fence` checks it inside the leader's transactions, so a leader that was paused (and
 * did not know it lost) has its writes refused.
 */
export class LeaderLease {
  private epoch: number | undefined
  private validUntil = 0
  private timer: NodeJS.Timeout | undefined
  private round: Promise<void> | undefined
  private readonly name: string
  /** Longest a fenced transaction may wait for its next statement, ms (as text, for set_config). */
  private readonly stallMs: string
  /** A round has answered: whether this instance leads is known. */
  decided = false

  constructor(
    private readonly db: Db,
    readonly holder: string,
    private readonly opts: LeaseOptions,
    private readonly listener: LeaseListener,
  ) {
    this.name = opts.name ?? 'leader'
    this.stallMs = String(Math.max(1, Math.floor(opts.ttlMs / 2)))
  }

  get isLeader(): boolean {
    return this.epoch !== undefined && performance.now() < this.validUntil
  }

  /** The fencing epoch while leading. */
  get currentEpoch(): number | undefined {
    return this.isLeader ? this.epoch : undefined
  }

  /** Tries at once, then every third of the lease. */
  start(): void {
    const tick = () => {
      this.checkValid()
      this.round ??= this.renew().finally(() => (this.round = undefined))
    }
    this.timer = setInterval(tick, Math.max(10, this.opts.ttlMs / 3))
    tick()
  }

  /** One attempt to take or renew the lease (start() makes them on its own). */
  async renew(): Promise<void> {
    const started = performance.now()
    const ttl = `${this.opts.ttlMs} milliseconds`
    try {
      const rows = rowsOf<{ epoch: string | number }>(
        await this.db.execute(sql`
          INSERT INTO leader_lease (name, holder, epoch, expires_at)
          VALUES (${this.name}, ${this.holder}, 1, now() + ${ttl}::interval)
          ON CONFLICT (name) DO UPDATE SET
            holder = EXCLUDED.holder,
            epoch = CASE
              WHEN leader_lease.holder = EXCLUDED.holder AND leader_lease.expires_at > now()
              THEN leader_lease.epoch ELSE leader_lease.epoch + 1 END,
            expires_at = EXCLUDED.expires_at
          WHERE leader_lease.holder = EXCLUDED.holder OR leader_lease.expires_at <= now()
          RETURNING epoch`),
      )
      const epoch = rows[0] === undefined ? undefined : Number(rows[0].epoch)
      if (this.epoch !== undefined && epoch !== this.epoch) {
        this.lose(epoch === undefined ? 'another instance holds the lease' : 'the lease lapsed')
      }
      this.decided = true
      if (epoch === undefined) return
      this.validUntil = started + this.opts.ttlMs
      if (this.epoch === undefined) {
        this.epoch = epoch
        this.listener.gained(epoch)
      }
    } catch (err) {
      this.opts.onError?.(err)
      this.checkValid()
    }
  }

  /**
   * Inside a transaction of the leader's: refuses it (LeaseLostError) unless this
   * instance holds the lease with its epoch. The row is share-locked until the
   * transaction ends, so no other instance can take the lease in between.
   *
   * A leader paused inside the transaction (SIGSTOP, a long GC, a frozen VM) would hold
   * that lock, and so keep the lease from every other instance, for as long as it stays
   * paused (issue 17). So the transaction also sets `idle_in_transaction_session_timeout`
   * to half the lease: Postgres ends a session that waits that long for the leader's
   * next statement, which rolls the transaction back and lets the lock go. It is the
   * server that acts, which a paused process cannot, and only on a transaction that
   * stalls. Half the lease keeps the takeover within the lease: the paused leader renewed
   * at most a third of it before it stalled, so the lease lapses no sooner than two
   * thirds of it after. The statements the leader sends when it resumes are refused
   * (postgres.js ≥ 4 rejects what a transaction sends after its connection was lost;
   * 3.4 sent it outside the transaction, unfenced).
   */
  async fence(tx: Tx): Promise<void> {
    const epoch = this.epoch
    if (epoch === undefined) throw new LeaseLostError('this instance does not lead')
    const rows = rowsOf(
      await tx.execute(sql`
        SELECT set_config('idle_in_transaction_session_timeout', ${this.stallMs}, true)
        FROM leader_lease
        WHERE name = ${this.name} AND holder = ${this.holder} AND epoch = ${epoch}
          AND expires_at > now()
        FOR SHARE`),
    )
    if (rows.length === 0) throw new LeaseLostError(`the lease of epoch ${epoch} is gone`)
  }

  /**
   * Stops renewing; a leader gives the lease up, so another takes over at once.
   * `beforeRelease` runs while the lease still holds (its fenced writes go through).
   */
  async stop(beforeRelease?: () => Promise<void>): Promise<void> {
    clearInterval(this.timer)
    await this.round
    const epoch = this.epoch
    if (epoch === undefined) return
    if (beforeRelease !== undefined) {
      await beforeRelease()
      this.epoch = undefined
      this.validUntil = 0
    } else {
      this.lose('stopping')
    }
    await this.db
      .execute(
        sql`UPDATE leader_lease SET expires_at = now()
            WHERE name = ${this.name} AND holder = ${this.holder} AND epoch = ${epoch}`,
      )
      .catch((err: unknown) => this.opts.onError?.(err))
  }

  private checkValid(): void {
    if (this.epoch !== undefined && performance.now() >= this.validUntil) {
      this.lose('the lease could not be renewed in time')
    }
  }

  private lose(reason: string): void {
    if (this.epoch === undefined) return
    this.epoch = undefined
    this.validUntil = 0
    this.listener.lost(reason)
  }
}
