import { afterEach, describe, expect, it, vi } from 'vitest'
import { sql } from 'drizzle-orm'
import { LeaderLease, LeaseLostError } from '../src/cluster/lease.ts'
import { openDatabase } from '../src/db/client.ts'
import type { Database } from '../src/db/client.ts'
import { rowsOf } from '../src/db/partitions.ts'
import { deliveries, stations } from '../src/db/schema.ts'
import { DeliveryChanges } from '../src/delivery/changes.ts'
import { DeliveryLifecycle } from '../src/delivery/lifecycle.ts'
import { DATABASES, WAIT, freshPostgres, stationRow } from './helpers.ts'

// Issue 17, item 2: one api instance at a time leads, chosen through the database.

const TTL_MS = 400

describe.each(DATABASES)('the leader lease, %s', (_name, open) => {
  let database: Database | undefined
  const leases: LeaderLease[] = []
  afterEach(async () => {
    await Promise.all(leases.splice(0).map((l) => l.stop()))
    await database?.close()
    database = undefined
  })

  const lease = (holder: string) => {
    const events: string[] = []
    const l = new LeaderLease(
      database!.db,
      holder,
      { ttlMs: TTL_MS },
      {
        gained: (epoch) => events.push(`gained ${epoch}`),
        lost: (reason) => events.push(`lost: ${reason}`),
      },
    )
    leases.push(l)
    return { lease: l, events }
  }
  const write = (l: LeaderLease) =>
    database!.db.transaction(async (tx) => {
      await l.fence(tx)
      await tx.execute(sql`SELECT 1`)
    })

  it('is held by one instance; another takes it over once it lapses, and the old one is fenced', async () => {
    database = await open()
    const a = lease('a')
    const b = lease('b')
    await a.lease.renew()
    await b.lease.renew()
    expect(a.events).toEqual(['gained 1'])
    expect(b.events).toEqual([])
    expect(a.lease.isLeader).toBe(true)
    await expect(write(a.lease)).resolves.toBeUndefined()
    await expect(write(b.lease)).rejects.toThrow(LeaseLostError)

    // a stops renewing (a paused process): b takes over once the lease has lapsed.
    await vi.waitFor(async () => {
      await b.lease.renew()
      expect(b.events).toEqual(['gained 2'])
    }, WAIT)
    // a has not noticed yet, and its writes are refused all the same.
    await expect(write(a.lease)).rejects.toThrow(/epoch 1/)
    await a.lease.renew()
    expect(a.events).toEqual(['gained 1', 'lost: another instance holds the lease'])
    expect(a.lease.isLeader).toBe(false)
  })

  it('stops leading on its own when it cannot renew in time', async () => {
    database = await open()
    const a = lease('a')
    await a.lease.renew()
    const b = lease('b')
    await database.close() // the database is gone for both
    database = undefined
    a.lease.start()
    await vi.waitFor(
      () => expect(a.events).toEqual(['gained 1', 'lost: the lease could not be renewed in time']),
      WAIT,
    )
    expect(b.events).toEqual([])
  })

  it('hands the lease over at once when its holder stops', async () => {
    database = await open()
    const a = lease('a')
    const b = lease('b')
    a.lease.start()
    await vi.waitFor(() => expect(a.lease.isLeader).toBe(true), WAIT)
    b.lease.start()
    await a.lease.stop()
    expect(a.events).toEqual(['gained 1', 'lost: stopping'])
    await vi.waitFor(() => expect(b.events).toEqual(['gained 2']), {
      timeout: TTL_MS,
      interval: 10,
    })
  })

  it("refuses the dispatcher's assignment of an instance whose lease was taken over", async () => {
    database = await open()
    const now = new Date()
    await database.db
      .insert(stations)
      .values([stationRow('f1', 's1', 48.85, now), stationRow('f1', 's2', 48.86, now)])
    const a = lease('a')
    await a.lease.renew()
    const sent: unknown[] = []
    const lifecycle = new DeliveryLifecycle(
      database.db,
      new DeliveryChanges(() => {}),
      async (_topic, command) => void sent.push(command),
      { warn: () => {} },
      undefined,
      (tx) => a.lease.fence(tx),
    )
    const d = await lifecycle.request({
      fleetId: 'f1',
      pickupStationId: 's1',
      dropoffStationId: 's2',
      payloadKg: 1,
    })
    const b = lease('b')
    await vi.waitFor(async () => {
      await b.lease.renew()
      expect(b.lease.isLeader).toBe(true)
    }, WAIT)
    const stop = (id: string, lat: number) => ({ id, lat, lon: 2.35 })
    await expect(
      lifecycle.assign(
        d,
        { id: 'drone-1', lat: null, lon: null, positionAt: null, lastSeenAt: null },
        stop('s1', 48.85),
        stop('s2', 48.86),
      ),
    ).rejects.toThrow(LeaseLostError)
    expect(sent).toEqual([])
    const [row] = await database.db.select().from(deliveries)
    expect(row).toMatchObject({ status: 'requested', droneId: null })
  })
})

// A leader paused inside a fenced transaction (issue 17). Several sessions on one
// database: Postgres only (PGlite is one process's single connection).
const url = process.env.DATABASE_URL

describe.runIf(url !== undefined && url !== '')(
  'a fenced transaction, Postgres (needs DATABASE_URL)',
  () => {
    let database: Awaited<ReturnType<typeof freshPostgres>> | undefined
    /** The paused leader's own connections, as its process would hold them. */
    let leaderDb: Database | undefined
    const leases: LeaderLease[] = []
    afterEach(async () => {
      // The paused leader's connections first: a round of b's waiting on its lock ends.
      await leaderDb?.close()
      await Promise.all(leases.splice(0).map((l) => l.stop()))
      await database?.close()
      leaderDb = database = undefined
    })

    const lease = (db: Database, holder: string) => {
      const l = new LeaderLease(db.db, holder, { ttlMs: TTL_MS }, { gained() {}, lost() {} })
      leases.push(l)
      return l
    }

    /**
     * Opens a fenced transaction of `a`'s that stops (as its process would, paused) until
     * `resume`, then writes a station. `outcome` says whether that write went through.
     */
    const pausedTransaction = (db: Database, a: LeaderLease) => {
      const state = {
        pid: undefined as number | undefined,
        outcome: undefined as 'written' | 'refused' | undefined,
        resume: () => {},
      }
      const resumed = new Promise<void>((r) => (state.resume = r))
      const done = db.db.transaction(async (tx) => {
        await a.fence(tx)
        const [row] = rowsOf<{ pid: number }>(await tx.execute(sql`SELECT pg_backend_pid() AS pid`))
        state.pid = row!.pid
        await resumed
        await tx
          .insert(stations)
          .values(stationRow('f1', 's1', 48.85, new Date()))
          .then(
            () => void (state.outcome = 'written'),
            (err: unknown) => {
              state.outcome = 'refused'
              throw err
            },
          )
      })
      done.catch(() => {})
      return { state, done }
    }

    it('is taken over from a leader paused inside a fenced transaction', async () => {
      database = await freshPostgres(url!)
      leaderDb = await openDatabase({ url: database.url, dataDir: '' })
      const a = lease(leaderDb, 'a')
      await a.renew()
      expect(a.isLeader).toBe(true)
      const { state, done } = pausedTransaction(leaderDb, a)
      await vi.waitFor(() => expect(state.pid).toBeDefined(), WAIT)

      // a holds the lease row FOR SHARE and answers nothing: b takes the lease over once it
      // has lapsed all the same (Postgres ends a's idle transaction).
      const b = lease(database, 'b')
      b.start()
      await vi.waitFor(() => expect(b.isLeader).toBe(true), { timeout: 5 * TTL_MS, interval: 10 })
      await expect(done).rejects.toThrow(/idle-in-transaction timeout/)

      // a wakes up: what its transaction still sends is refused, and nothing of it is stored.
      state.resume()
      await vi.waitFor(() => expect(state.outcome).toBe('refused'), WAIT)
      expect(await database.db.select().from(stations)).toEqual([])
    })

    it('commits nothing a fenced transaction sends after its session was ended', async () => {
      database = await freshPostgres(url!)
      // One connection: the pool opens that same connection again for its next query.
      leaderDb = await openDatabase({ url: database.url, dataDir: '', poolSize: 1 })
      const a = lease(leaderDb, 'a')
      await a.renew()
      const { state, done } = pausedTransaction(leaderDb, a)
      await vi.waitFor(() => expect(state.pid).toBeDefined(), WAIT)

      await database.db.execute(sql`SELECT pg_terminate_backend(${state.pid})`)
      await expect(done).rejects.toThrow()
      await leaderDb.db.execute(sql`SELECT 1`) // the pool has connected again
      state.resume()
      // postgres.js 3.4 sent the write on the new connection, outside the transaction.
      await vi.waitFor(() => expect(state.outcome).toBe('refused'), WAIT)
      expect(await database.db.select().from(stations)).toEqual([])
    })
  },
)
