import { afterEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import postgres from 'postgres'
import { WAIT, buildApi, freshPostgres, startBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Issue 17, item 2: an instance that loses the lead gives the ingest session up at once,
// whatever its other duties are waiting for: the instance that took over opens the same
// session (one client id), and two instances that both keep it take it from each other.

const url = process.env.DATABASE_URL

describe.runIf(url !== undefined && url !== '')('losing the lead (needs DATABASE_URL)', () => {
  let broker: TestBroker | undefined
  let database: Awaited<ReturnType<typeof freshPostgres>> | undefined
  let api: FastifyInstance | undefined
  let admin: postgres.Sql | undefined
  afterEach(async () => {
    await admin?.end()
    await api?.close()
    await database?.close()
    await broker?.close()
    admin = api = database = broker = undefined
  })

  it('drops the ingest session at once, while a round of the dispatcher is stuck', async () => {
    broker = await startBroker()
    database = await freshPostgres(url!)
    const a = await buildApi(broker.url, database, { LEADER_LEASE_S: '2' })
    api = a
    await expect.poll(() => a.leadership.role, WAIT).toBe('leader')
    await expect.poll(() => a.mqtt.subscribed, WAIT).toBe(true)

    // The deliveries table is locked: the dispatcher's next round (every second) and the
    // reconciliation wait on it (as on a database that stopped answering).
    const sql = postgres(database.url, { max: 2, onnotice: () => {} })
    admin = sql
    let release!: () => void
    const released = new Promise<void>((r) => (release = r))
    const locked = sql.begin(async (tx) => {
      await tx`LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE`
      await released
    })
    try {
      const waiting = async () => {
        const [row] = await sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = ${database!.name} AND wait_event_type = 'Lock'`
        return row!.n
      }
      await expect.poll(waiting, WAIT).toBeGreaterThan(0)
      // Another instance takes the lease over.
      await sql`UPDATE leader_lease SET holder = 'b', epoch = epoch + 1,
                expires_at = now() + interval '1 hour'`
      await expect.poll(() => a.leadership.role, WAIT).toBe('follower')
      // The session is left within a round of the lease, not once the stuck round ends.
      await expect.poll(() => a.mqtt.subscribed, { timeout: 2_000, interval: 25 }).toBe(false)
    } finally {
      release()
      await locked
    }
  })
})
