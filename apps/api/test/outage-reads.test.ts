import { createServer } from 'node:net'
import type { Socket } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { sql } from 'drizzle-orm'
import { ErrorSchema } from '@skyline/schemas'
import type { Database } from '../src/db/client.ts'
import { openDatabase } from '../src/db/client.ts'
import { isDatabaseUnavailable } from '../src/db/errors.ts'
import { DATABASES, buildApi, get, startBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'
import { startPrivatePostgres } from './private-postgres.ts'

// Issue #14: while the database is down or silent, REST reads answer 503 in the error
// shape at once (they answered 500, or hung for up to 20 s), and read again as soon as it
// is back. The bounds below are hang checks, far above the few milliseconds a 503 takes.

/** Longer than any 503 should take, far shorter than the 20 s hang it replaces, ms. */
const ANSWER_BOUND_MS = 3_000

interface Answer {
  status: number
  code?: string
  retryAfter?: unknown
}

/** Reads that need a token and no database: who the token is (the map's role check). */
const TOKEN_ONLY = ['/api/auth/me']

/**
 * Every REST read of the app's OpenAPI document that needs a token and reads the
 * database, ids filled in (a 404 when the db is up). The open ones (the probes, the map's
 * sign-in configuration) and TOKEN_ONLY read no database.
 */
async function readPaths(api: FastifyInstance): Promise<string[]> {
  const doc = await api.inject({ method: 'GET', url: '/docs/json' })
  type Ops = Record<string, { security?: unknown }>
  return Object.entries(doc.json<{ paths: Record<string, Ops> }>().paths)
    .filter(([, ops]) => ops.get !== undefined && ops.get.security !== undefined)
    .map(([path]) => path.replaceAll(/\{\w+\}/g, 'nobody'))
    .filter((path) => !TOKEN_ONLY.includes(path))
}

/** GET `url`, or `status: 0` if there is no answer within ANSWER_BOUND_MS. */
async function read(api: FastifyInstance, url: string): Promise<Answer> {
  let timer: NodeJS.Timeout | undefined
  const res = await Promise.race([
    get(api, url),
    new Promise<undefined>(
      (resolve) => (timer = setTimeout(() => resolve(undefined), ANSWER_BOUND_MS)),
    ),
  ])
  clearTimeout(timer)
  if (res === undefined) return { status: 0 }
  if (res.statusCode < 400) return { status: res.statusCode }
  return {
    status: res.statusCode,
    code: ErrorSchema.parse(res.json()).error.code,
    retryAfter: res.headers['retry-after'],
  }
}

describe('REST reads during a database outage', () => {
  const cleanup: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c()
  })
  const start = async (database: Database, env: Record<string, string> = {}) => {
    const broker: TestBroker = await startBroker()
    cleanup.push(() => broker.close())
    const api = await buildApi(broker.url, database, env)
    cleanup.push(() => api.close())
    return api
  }

  // A server to stop needs a server of its own. CI sets DATABASE_URL: Postgres is there.
  const url = process.env.DATABASE_URL
  it.runIf(url !== undefined && url !== '')(
    'answers 503 database_unavailable while Postgres is stopped, and reads once it is back',
    async () => {
      const pg = await startPrivatePostgres()
      cleanup.push(() => pg.destroy())
      const database = await openDatabase({ url: pg.url, dataDir: '' })
      cleanup.push(() => database.close())
      // A deadline far away: the 503s must come from the outage, not from waiting.
      const api = await start(database, { REST_READ_TIMEOUT_MS: '60000' })
      const paths = await readPaths(api)
      expect(paths.length).toBeGreaterThanOrEqual(8)
      for (const path of paths) expect((await read(api, path)).status, path).toBeLessThan(500)

      await pg.stop()
      // What reads no database answers on.
      for (const path of TOKEN_ONLY) expect(await read(api, path), path).toEqual({ status: 200 })
      // Twice over: reconnection attempts fail again and again, and must not pile up waits.
      for (let round = 0; round < 2; round++) {
        for (const path of paths) {
          expect(await read(api, path), path).toEqual({
            status: 503,
            code: 'database_unavailable',
            retryAfter: '1',
          })
        }
      }

      await pg.start()
      await vi.waitFor(
        async () => {
          for (const path of paths) expect((await read(api, path)).status, path).toBeLessThan(500)
        },
        { timeout: ANSWER_BOUND_MS, interval: 25 },
      )
    },
    60_000,
  )

  it.each(DATABASES)(
    'answers 503 timeout on %s when the database does not answer in time',
    async (_name, open) => {
      const database = await open()
      cleanup.push(() => database.close())
      const api = await start(database, { REST_READ_TIMEOUT_MS: '200' })
      // A transaction holding the drones table: Postgres queues the read behind its lock,
      // PGlite (one connection) behind the transaction itself.
      let locked!: () => void
      let release!: () => void
      const isLocked = new Promise<void>((resolve) => (locked = resolve))
      const held = new Promise<void>((resolve) => (release = resolve))
      const holder = database.db.transaction(async (tx) => {
        await tx.execute(sql`LOCK TABLE drones IN ACCESS EXCLUSIVE MODE`)
        locked()
        await held
      })
      await isLocked
      try {
        expect(await read(api, '/api/drones')).toEqual({
          status: 503,
          code: 'timeout',
          retryAfter: '1',
        })
      } finally {
        release()
        await holder
      }
      expect(await read(api, '/api/drones')).toEqual({ status: 200 })
    },
  )

  it('answers 503 database_unavailable when PGlite is closed under it, as documented', async () => {
    const [, open] = DATABASES[0]!
    const database = await open()
    const api = await start(database)
    const doc = await api.inject({ method: 'GET', url: '/docs/json' })
    const operations = Object.values(
      doc.json<{ paths: Record<string, Record<string, { responses: object }>> }>().paths,
    ).flatMap((ops) => Object.values(ops))
    for (const op of operations) expect(op.responses).toHaveProperty('503')
    await database.close()
    for (const path of await readPaths(api)) {
      expect(await read(api, path), path).toEqual({
        status: 503,
        code: 'database_unavailable',
        retryAfter: '1',
      })
    }
  })

  it('gives up on a server that takes connections and never answers, as unavailable', async () => {
    // What a hung server or a black-holed address looks like: the socket opens, the
    // startup message is never answered (postgres.js would wait 30 s by default).
    const sockets: Socket[] = []
    const silent = createServer((socket) => void sockets.push(socket))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    cleanup.push(async () => {
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => silent.close(resolve))
    })
    const { port } = silent.address() as { port: number }
    const opening = openDatabase({
      url: `postgres://postgres@127.0.0.1:${port}/test`,
      dataDir: '',
      connectTimeoutS: 0.2,
    })
    const failure = await Promise.race([
      opening.then(
        () => 'opened',
        (err: unknown) => err,
      ),
      new Promise((resolve) => setTimeout(resolve, ANSWER_BOUND_MS, 'still waiting').unref()),
    ])
    expect(failure).toBeInstanceOf(Error)
    expect(isDatabaseUnavailable(failure)).toBe(true)
  })
})
