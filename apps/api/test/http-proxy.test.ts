import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { signDeviceToken } from '@skyline/auth'
import { openDatabase } from '../src/db/client.ts'
import type { Database } from '../src/db/client.ts'
import { WAIT, buildApi, freshPostgres, liveAuth, startBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// docker-compose.scale.yml's HTTP front (deploy/haproxy-http.cfg) run by the real haproxy
// (Debian's) in front of two api instances on one database: the same file, its Docker DNS
// template replaced by the two instances' loopback ports (testConfig), so every other
// line (health check, timeouts, X-Forwarded-For, error pages) is the deployed one.

const HAPROXY = '/usr/sbin/haproxy'
const DEPLOY_CONFIG = new URL('../../../deploy/haproxy-http.cfg', import.meta.url)
const FORGED = `Bearer ${await signDeviceToken('not-the-api-secret-but-32-characters-long', {
  role: 'viewer',
  sub: 'guesser',
  fleet: 'f1',
})}`

/**
 * deploy/haproxy-http.cfg on loopback: its bind on `port`, its server template as one
 * server per api port, no Docker DNS, checks every 100 ms instead of 2 s. Throws when
 * the file no longer has a line this rewrites, so the test follows the deployed file.
 */
function testConfig(port: number, apis: number[]): string {
  let config = readFileSync(DEPLOY_CONFIG, 'utf8')
  const rewrite = (pattern: RegExp, by: string) => {
    const before = config
    config = config.replace(pattern, by)
    if (config === before) throw new Error(`deploy/haproxy-http.cfg: no match for ${pattern}`)
  }
  rewrite(/^resolvers docker\n(?:[ \t]+.*\n)*/m, '')
  rewrite(/ resolvers docker init-addr none/, '')
  rewrite(/^(\s*)bind :3000$/m, `$1bind 127.0.0.1:${port}`)
  rewrite(
    /^(\s*)server-template api \d+ api:3000$/m,
    apis.map((p, i) => `$1server api${i + 1} 127.0.0.1:${p}`).join('\n'),
  )
  rewrite(/\binter 2s\b/, 'inter 100ms')
  return config
}

/** A port free now (the kernel's pick, released at once). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

const url = process.env.DATABASE_URL
describe.runIf(url !== undefined && url !== '')(
  'the compose HTTP proxy in front of two api instances (needs DATABASE_URL)',
  () => {
    let broker: TestBroker | undefined
    const databases: Database[] = []
    const apis: FastifyInstance[] = []
    let stopProxy: (() => Promise<void>) | undefined
    let base = ''

    afterAll(async () => {
      await stopProxy?.()
      for (const api of apis.splice(0)) await api.close()
      for (const d of databases.splice(0).reverse()) await d.close()
      await broker?.close()
    })

    /** GET `path` through the proxy. */
    const through = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, { headers })

    it('spreads REST over both instances, whatever their role', async () => {
      broker = await startBroker()
      const fresh = await freshPostgres(url!)
      databases.push(fresh)
      const second = await openDatabase({ url: fresh.url, dataDir: '' })
      databases.push(second)
      // As in docker-compose.scale.yml: the proxy is trusted for X-Forwarded-For.
      const env = { TRUST_PROXY: '127.0.0.1', RATE_LIMIT_AUTH_FAILURES_PER_MIN: '2' }
      for (const [id, database] of [
        ['a', fresh],
        ['b', second],
      ] as const) {
        const api = await buildApi(broker.url, database, { ...env, API_INSTANCE_ID: id })
        apis.push(api)
        await api.listen({ host: '127.0.0.1', port: 0 })
      }
      const ports = apis.map((a) => (a.server.address() as AddressInfo).port)

      const port = await freePort()
      const dir = mkdtempSync(join(tmpdir(), 'skyline-http-lb-'))
      const file = join(dir, 'haproxy.cfg')
      writeFileSync(file, testConfig(port, ports))
      const child = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] })
      const output: string[] = []
      child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()))
      const exited = once(child, 'exit')
      stopProxy = async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM')
          await exited
        }
        rmSync(dir, { recursive: true, force: true })
      }
      base = `http://127.0.0.1:${port}`

      // Both answer through the one address: the leader and the follower.
      const seen = new Set<string>()
      await vi.waitFor(async () => {
        expect(child.exitCode, output.join('')).toBeNull()
        const res = await through('/api/ready')
        const body = (await res.json()) as { instance: string; role: string }
        expect(res.status).toBe(200)
        seen.add(`${body.instance}:${body.role}`)
        expect([...seen].sort()).toEqual(['a:leader', 'b:follower'])
      }, WAIT)
    })

    it('passes the live stream through: sign-in, snapshot, and frames after it', async () => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/api/live`)
      const frames: { type: string }[] = []
      ws.on('message', (data: Buffer) =>
        frames.push(JSON.parse(data.toString()) as { type: string }),
      )
      await once(ws, 'open')
      ws.send(await liveAuth())
      // The snapshot, then an (empty) changes frame: the upgraded connection carries both ways.
      await vi.waitFor(() => {
        expect(frames[0]?.type).toBe('snapshot')
        expect(frames.some((f) => f.type === 'changes')).toBe(true)
      }, WAIT)
      ws.close()
      await once(ws, 'close')
    })

    it("counts failed sign-ins against the client's address, whatever X-Forwarded-For it sends", async () => {
      // Each request claims another address. The proxy drops the client's own header and
      // names the peer it sees, so both instances count them all against 127.0.0.1: past
      // 2 on one instance, 429. Were the header passed on, each would be a new client.
      const statuses: number[] = []
      for (let i = 0; i < 8 && !statuses.includes(429); i++) {
        const res = await through('/api/fleet', {
          authorization: FORGED,
          'x-forwarded-for': `203.0.113.${i + 1}`,
        })
        statuses.push(res.status)
      }
      expect(statuses.slice(0, 2)).toEqual([401, 401])
      expect(statuses).toContain(429)
    })

    it("answers in the api's error shape when no instance is up", async () => {
      for (const api of apis.splice(0)) await api.close()
      await vi.waitFor(async () => {
        const res = await through('/api/health')
        expect(res.status).toBe(503)
        expect(res.headers.get('content-type')).toBe('application/json')
        expect(res.headers.get('retry-after')).toBe('1')
        expect(await res.json()).toEqual({
          error: { code: 'api_unavailable', message: 'no api instance is up' },
        })
      }, WAIT)
    })
  },
)
