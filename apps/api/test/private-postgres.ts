// A Postgres server of the test's own (initdb + pg_ctl in a temporary directory, on a
// free port), for tests that stop and start the database: the machine's server is shared
// and is never stopped.
import { execFile } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface PrivatePostgres {
  /** postgres:// URL of its `postgres` database (user postgres, trust). */
  url: string
  start(): Promise<void>
  /** Fast shutdown: sessions are ended, new connections refused until `start`. */
  stop(): Promise<void>
  /** Stops it (immediately) and removes its directory. */
  destroy(): Promise<void>
}

/**
 * A binary of the local Postgres installation: on PATH, or in Debian's versioned
 * directory (/usr/lib/postgresql/<major>/bin), which is not on PATH. The newest wins.
 */
export function postgresBinary(name: 'initdb' | 'pg_ctl'): string | undefined {
  const debian = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql')
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a))
        .map((v) => `/usr/lib/postgresql/${v}/bin`)
    : []
  const path = (process.env.PATH ?? '').split(':').filter((d) => d !== '')
  return [...path, ...debian].map((d) => join(d, name)).find((f) => existsSync(f))
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Creates and starts a server; `destroy` it when done. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const initdb = postgresBinary('initdb')
  const pgCtl = postgresBinary('pg_ctl')
  if (initdb === undefined || pgCtl === undefined)
    throw new Error('initdb and pg_ctl not found: install the Postgres server binaries')
  const dir = mkdtempSync(join(tmpdir(), 'skyline-pg-'))
  // Postgres refuses to run as root: as root, run it as the `postgres` system user.
  const asRoot = process.getuid?.() === 0
  if (asRoot) chownSync(dir, ...(await postgresIds()))
  const exec = (bin: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', bin, ...args]) : run(bin, args)
  const data = join(dir, 'data')
  const port = await freePort()
  await exec(initdb, ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync'])
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`
  const pg: PrivatePostgres = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: async () =>
      void (await exec(pgCtl, ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', 'start'])),
    stop: async () => void (await exec(pgCtl, ['-D', data, '-m', 'fast', '-w', 'stop'])),
    destroy: async () => {
      await exec(pgCtl, ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {})
      rmSync(dir, { recursive: true, force: true })
    },
  }
  await pg.start()
  return pg
}

async function postgresIds(): Promise<[number, number]> {
  const { stdout } = await run('id', ['-u', 'postgres'])
  const { stdout: group } = await run('id', ['-g', 'postgres'])
  return [Number(stdout.trim()), Number(group.trim())]
}
