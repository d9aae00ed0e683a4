// vitest globalSetup: the migrated databases every test's fresh one is copied from, made
// once per run instead of once per test file. Migrating a new PGlite takes about 6 s of
// CPU, and each test file runs in a process of its own: 30 files paid it 30 times.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import type { TestProject } from 'vitest/node'
import { openDatabase } from '../src/db/client.ts'

declare module 'vitest' {
  interface ProvidedContext {
    /** A migrated PGlite data directory, copied by freshPglite(). */
    pgliteTemplate: string
    /** A migrated database on DATABASE_URL's server, the template of freshPostgres(); '' without one. */
    postgresTemplate: string
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'skyline-pglite-template-'))
  await (await openDatabase({ dataDir: dir })).close()
  project.provide('pgliteTemplate', dir)

  const url = process.env.DATABASE_URL
  let dropTemplate = async () => {}
  if (url !== undefined && url !== '') {
    const name = `skyline_template_${randomBytes(5).toString('hex')}`
    const admin = postgres(url, { max: 1, onnotice: () => {} })
    await admin.unsafe(`CREATE DATABASE ${name}`)
    const dbUrl = new URL(url)
    dbUrl.pathname = `/${name}`
    // Closed again: CREATE DATABASE … TEMPLATE refuses a template anyone is connected to.
    await (await openDatabase({ url: dbUrl.toString(), dataDir: '' })).close()
    project.provide('postgresTemplate', name)
    dropTemplate = async () => {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin.end()
    }
  } else {
    project.provide('postgresTemplate', '')
  }

  return async () => {
    rmSync(dir, { recursive: true, force: true })
    await dropTemplate()
  }
}
