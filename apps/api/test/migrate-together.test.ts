import { afterEach, describe, expect, it } from 'vitest'
import postgres from 'postgres'
import { randomBytes } from 'node:crypto'
import { openDatabase } from '../src/db/client.ts'
import type { Database } from '../src/db/client.ts'

// Issue 17, item 1: api instances started together on one fresh database all start
// (drizzle's migrator alone let one of them die with 42P07, relation already exists).
const url = process.env.DATABASE_URL
describe.runIf(url !== undefined && url !== '')(
  'instances migrating one database at once (needs DATABASE_URL)',
  () => {
    let opened: Database[] = []
    let drop: (() => Promise<void>) | undefined
    afterEach(async () => {
      await Promise.all(opened.map((d) => d.close()))
      opened = []
      await drop?.()
    })

    it('all start on a fresh database, and the migrations are applied once', async () => {
      const name = `skyline_test_${randomBytes(5).toString('hex')}`
      const admin = postgres(url!, { max: 1, onnotice: () => {} })
      await admin.unsafe(`CREATE DATABASE ${name}`)
      drop = async () => {
        await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
        await admin.end()
      }
      const dbUrl = new URL(url!)
      dbUrl.pathname = `/${name}`

      const results = await Promise.allSettled(
        Array.from({ length: 4 }, () => openDatabase({ url: dbUrl.toString(), dataDir: '' })),
      )
      opened = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
      expect(results.filter((r) => r.status === 'rejected')).toEqual([])

      const check = postgres(dbUrl.toString(), { max: 1, onnotice: () => {} })
      const applied = await check`SELECT hash FROM drizzle.__drizzle_migrations`
      await check.end()
      expect(new Set(applied.map((r) => r.hash as string)).size).toBe(applied.length)
      expect(applied.length).toBeGreaterThan(4)
    })
  },
)
