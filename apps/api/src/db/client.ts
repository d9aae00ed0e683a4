import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { PGlite } from '@electric-sql/pglite'
import { sql } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import type { PostgresJsDatabase } from 'drizzle-orm/postgres-js'
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import * as schema from './schema.ts'

/** The database, whichever driver is behind it: queries are written once against this. */
export type Db = PgDatabase<PgQueryResultHKT, typeof schema>

export interface Database {
  readonly db: Db
  readonly kind: 'postgres' | 'pglite'
  /** Answers when the database does (for /api/ready). */
  ping(): Promise<void>
  /**
   * Hears the NOTIFYs of `channel` (Postgres; PGlite is one process's, and has no one to
   * hear). Resolves with the way to stop.
   */
  listen?(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>
  close(): Promise<void>
}

const MIGRATIONS = fileURLToPath(new URL('../../drizzle', import.meta.url))

export interface DatabaseOptions {
  /** postgres:// URL; absent: embedded PGlite under `dataDir`. */
  url?: string
  dataDir: string
  /** Connections in the pool (Postgres only). Default 10. */
  poolSize?: number
  /**
   * Longest a connection attempt may take before its queries fail, s (Postgres only).
   * Default 5 (postgres.js's own is 30): an unreachable host fails reads as 503 instead
   * of holding them.
   */
  connectTimeoutS?: number
}

/**
 * Wait before a pool connection that failed tries again, s: postgres.js's own curve
 * (jittered, tripling from 10 ms), capped at half a second instead of 20 s. A query
 * queued on a connection waits out its backoff, so with the default a read hung for up to
 * 20 s during an outage and for as long after the database was back (issue #14). The
 * attempts stay cheap while the server is away: each is one refused socket, made only
 * when a query asks for a connection.
 */
export const reconnectBackoffS = (retries: number) =>
  Math.min(0.5, (0.5 + Math.random() / 2) * (3 ** retries / 100))

/** The advisory lock that makes one instance at a time migrate: 'skyline.migrations'. */
const MIGRATION_LOCK = 0x736b796c696e65n % 2n ** 63n

/**
 * Applies the migrations while a session advisory lock is held on a connection of its
 * own, so that api instances started together on one database take turns: the first
 * applies them, the others then find nothing to do. drizzle's migrator alone raced (two
 * instances on a fresh database: `relation "deliveries" already exists`, 42P07).
 */
async function migrateLocked(
  url: string,
  connectTimeoutS: number,
  db: PostgresJsDatabase<typeof schema>,
): Promise<void> {
  // Its own client: the pool may be one connection (bench/writer-ceiling.ts).
  const lock = postgres(url, { max: 1, connect_timeout: connectTimeoutS, onnotice: () => {} })
  try {
    await lock`SELECT pg_advisory_lock(${MIGRATION_LOCK.toString()}::bigint)`
    await migratePostgres(db, { migrationsFolder: MIGRATIONS })
  } finally {
    // Ending the session lets the lock go, whatever happened.
    await lock.end({ timeout: 1 })
  }
}

/**
 * Opens the database and applies the committed migrations. Postgres through
 * postgres.js when a URL is given, otherwise PGlite (real Postgres in WebAssembly)
 * persisted under DATA_DIR, so one machine needs no server.
 */
export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.url !== undefined) {
    // postgres.js 4: a transaction whose connection is lost rejects every statement it
    // sends after, its COMMIT too. 3.4 sent them on whatever connection came next,
    // outside the transaction (or inside another one), where a fenced write of a paused
    // leader committed unfenced (issue 17; porsager/postgres#1155, #1215).
    const client = postgres(opts.url, {
      max: opts.poolSize ?? 10,
      connect_timeout: opts.connectTimeoutS ?? 5,
      backoff: reconnectBackoffS,
      // Parameters typed from their JavaScript values, as 3.4 did (4 leaves it to the
      // server): the queries were written and tested that way.
      infer: true,
      onnotice: () => {},
    })
    const db = drizzlePostgres(client, { schema })
    try {
      await migrateLocked(opts.url, opts.connectTimeoutS ?? 5, db)
    } catch (err) {
      await client.end({ timeout: 1 })
      throw err
    }
    return {
      db: db as unknown as Db,
      kind: 'postgres',
      ping: async () => void (await db.execute(sql`select 1`)),
      // postgres.js keeps one connection for its LISTENs and listens again after a reconnect.
      async listen(channel, onPayload) {
        const listening = await client.listen(channel, onPayload)
        return () => listening.unlisten()
      },
      close: () => client.end({ timeout: 5 }),
    }
  }
  const dir = join(opts.dataDir, 'pglite')
  mkdirSync(dir, { recursive: true })
  const client = await PGlite.create(dir)
  const db = drizzlePglite(client, { schema })
  await migratePglite(db, { migrationsFolder: MIGRATIONS })
  return {
    db: db as unknown as Db,
    kind: 'pglite',
    ping: async () => void (await db.execute(sql`select 1`)),
    close: () => client.close(),
  }
}
