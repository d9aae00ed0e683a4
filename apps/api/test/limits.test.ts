import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { signDeviceToken } from '@skyline/auth'
import { CLOSE_UNAUTHORIZED } from '../src/plugins/app/live.ts'
import { apiPerTest, bearer } from './helpers.ts'

// Request rates (issue 16): writes per principal, failed sign-ins per address. Small
// limits through the environment; every request goes through the real api.

const build = apiPerTest()
let api: FastifyInstance | undefined

/** A token signed with another secret: it does not verify. */
const FORGED = `Bearer ${await signDeviceToken('not-the-api-secret-but-32-characters-long', {
  role: 'service',
  sub: 'guess',
})}`

async function start(env: Record<string, string>): Promise<FastifyInstance> {
  api = await build(env)
  return api
}

function expectRateLimited(res: { statusCode: number; headers: Record<string, unknown> }) {
  expect(res.statusCode).toBe(429)
  const retryAfter = Number(res.headers['retry-after'])
  expect(retryAfter).toBeGreaterThanOrEqual(1)
  expect(retryAfter).toBeLessThanOrEqual(60)
}

async function metric(name: string, labels: string): Promise<number> {
  const text = (await api!.inject({ method: 'GET', url: '/metrics' })).body
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `))
  return line === undefined ? 0 : Number(line.split(' ')[1])
}

describe('writes', () => {
  it('answers 429 with Retry-After past RATE_LIMIT_WRITES_PER_MIN of one principal, and no other', async () => {
    const app = await start({ RATE_LIMIT_WRITES_PER_MIN: '3' })
    const alice = await bearer({ role: 'service', sub: 'alice', fleet: 'f1' })
    const bob = await bearer({ role: 'service', sub: 'bob', fleet: 'f1' })
    const cancel = (authorization: string, remoteAddress = '127.0.0.1') =>
      app.inject({
        method: 'POST',
        url: '/api/deliveries/nothing/cancel',
        headers: { authorization },
        remoteAddress,
      })

    // Every write counts, whatever it answers (404 here, 400 for a bad body).
    expect((await cancel(alice)).statusCode).toBe(404)
    expect((await cancel(alice)).statusCode).toBe(404)
    const bad = await app.inject({
      method: 'POST',
      url: '/api/deliveries',
      headers: { authorization: alice },
      payload: { fleet: 'f1' },
    })
    expect(bad.statusCode).toBe(400)

    const limited = await cancel(alice)
    expectRateLimited(limited)
    const body = limited.json<{ error: { code: string; message: string } }>()
    expect(body.error.code).toBe('rate_limited')
    expect(body.error.message).toMatch(/3 writes a minute/)
    // Both write routes share the budget; from another address it is the same principal.
    expectRateLimited(
      await app.inject({
        method: 'POST',
        url: '/api/deliveries',
        headers: { authorization: alice },
        remoteAddress: '10.9.9.9',
        payload: { fleet: 'f1', pickupStationId: 'a', dropoffStationId: 'b', payloadKg: 1 },
      }),
    )
    // Another principal, from the same address, is not slowed down.
    expect((await cancel(bob)).statusCode).toBe(404)
    // Reads are not limited: the map polls them.
    for (let i = 0; i < 5; i++) {
      const read = await app.inject({
        method: 'GET',
        url: '/api/deliveries',
        headers: { authorization: alice },
      })
      expect(read.statusCode).toBe(200)
    }
    expect(await metric('skyline_http_rate_limited_total', '{limit="writes"}')).toBe(2)
  })

  it('counts the zones’ PATCH and DELETE against the same budget as the POSTs', async () => {
    const app = await start({ RATE_LIMIT_WRITES_PER_MIN: '2' })
    const carol = await bearer({ role: 'service', sub: 'carol', fleet: 'f1' })
    const write = (method: 'PATCH' | 'DELETE') =>
      app.inject({
        method,
        url: '/api/geofences/nothing',
        headers: { authorization: carol },
        ...(method === 'PATCH' && { payload: { name: 'x' } }),
      })
    expect((await write('PATCH')).statusCode).toBe(404)
    expect((await write('DELETE')).statusCode).toBe(404)
    expectRateLimited(await write('PATCH'))
    expectRateLimited(await write('DELETE'))
  })

  it.each([['0'], ['-1'], ['lots'], ['1.5']])(
    'stops start-up on RATE_LIMIT_WRITES_PER_MIN=%s, naming the variable',
    async (value) => {
      await expect(start({ RATE_LIMIT_WRITES_PER_MIN: value })).rejects.toThrow(
        /RATE_LIMIT_WRITES_PER_MIN/,
      )
    },
  )
})

describe('failed sign-ins', () => {
  it('answer 429 to every request of an address past RATE_LIMIT_AUTH_FAILURES_PER_MIN, and to no other address', async () => {
    const app = await start({ RATE_LIMIT_AUTH_FAILURES_PER_MIN: '3' })
    const good = await bearer({ role: 'viewer', sub: 'watcher', fleet: 'f1' })
    const read = (authorization: string | undefined, remoteAddress: string) =>
      app.inject({
        method: 'GET',
        url: '/api/fleet',
        headers: authorization === undefined ? {} : { authorization },
        remoteAddress,
      })

    // A request without a token is not a guess: it does not count.
    for (let i = 0; i < 5; i++) expect((await read(undefined, '10.0.0.1')).statusCode).toBe(401)
    for (let i = 0; i < 3; i++) expect((await read(FORGED, '10.0.0.1')).statusCode).toBe(401)
    expect((await read(good, '10.0.0.1')).statusCode).toBe(200) // at the limit, not past it
    expect((await read(FORGED, '10.0.0.1')).statusCode).toBe(401) // the 4th: past it

    // From then on, the address waits, even with a good token, on every route with one.
    const blocked = await read(good, '10.0.0.1')
    expectRateLimited(blocked)
    const body = blocked.json<{ error: { code: string; message: string } }>()
    expect(body.error.code).toBe('rate_limited')
    expect(body.error.message).toMatch(/do not verify/)
    expectRateLimited(
      await app.inject({
        method: 'POST',
        url: '/api/deliveries/x/cancel',
        headers: { authorization: await bearer({ role: 'service', sub: 'ops' }) },
        remoteAddress: '10.0.0.1',
      }),
    )
    // The probes need no token and stay open.
    const health = await app.inject({
      method: 'GET',
      url: '/api/health',
      remoteAddress: '10.0.0.1',
    })
    expect(health.statusCode).toBe(200)
    // Another address is not concerned.
    expect((await read(good, '10.0.0.2')).statusCode).toBe(200)
    expect(await metric('skyline_http_rate_limited_total', '{limit="auth_failures"}')).toBe(2)
  })

  it('tell clients apart behind a proxy of TRUST_PROXY by X-Forwarded-For, and not without it', async () => {
    const good = await bearer({ role: 'viewer', sub: 'watcher', fleet: 'f1' })
    const read = (a: FastifyInstance, authorization: string, client: string) =>
      a.inject({
        method: 'GET',
        url: '/api/fleet',
        headers: { authorization, 'x-forwarded-for': client },
        remoteAddress: '10.1.1.1', // the proxy
      })
    for (const [env, otherClient] of [
      [{ TRUST_PROXY: '10.1.1.0/24' }, 200],
      // A proxy in a container network, whose address Docker picks (docker-compose.scale.yml).
      [{ TRUST_PROXY: 'uniquelocal' }, 200],
      [{}, 429], // every client is the proxy's address: one guesser blocks all
    ] as const) {
      const app = await start({ RATE_LIMIT_AUTH_FAILURES_PER_MIN: '2', ...env })
      for (let i = 0; i < 3; i++) await read(app, FORGED, '203.0.113.5')
      expectRateLimited(await read(app, good, '203.0.113.5'))
      expect((await read(app, good, '203.0.113.6')).statusCode, JSON.stringify(env)).toBe(
        otherClient,
      )
      await app.close()
      api = undefined
    }
  })

  it('count on the live stream too, whose upgrade is then refused with 429', async () => {
    const app = await start({ RATE_LIMIT_AUTH_FAILURES_PER_MIN: '2' })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    if (address === null || typeof address === 'string') throw new Error('not listening')
    const url = `ws://127.0.0.1:${address.port}/api/live`

    /** Signs in with `token` from `localAddress`: the close code, or the upgrade's status. */
    const signIn = async (token: string, localAddress: string): Promise<number | 'open'> => {
      const ws = new WebSocket(url, { localAddress })
      ws.on('error', () => {})
      return new Promise((resolve) => {
        ws.once('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0)
          ws.terminate()
        })
        ws.once('open', () => {
          ws.send(JSON.stringify({ type: 'auth', token: token.replace(/^Bearer /, '') }))
          ws.once('message', () => {
            resolve('open')
            ws.terminate()
          })
          ws.once('close', (code) => resolve(code))
        })
      })
    }
    expect(await signIn(FORGED, '127.0.0.2')).toBe(CLOSE_UNAUTHORIZED)
    expect(await signIn(FORGED, '127.0.0.2')).toBe(CLOSE_UNAUTHORIZED)
    expect(await signIn(FORGED, '127.0.0.2')).toBe(CLOSE_UNAUTHORIZED) // the 3rd: past it
    const good = await bearer({ role: 'viewer', sub: 'watcher', fleet: 'f1' })
    expect(await signIn(good, '127.0.0.2')).toBe(429)
    // REST from that address waits too; another address signs in.
    const rest = await fetch(`http://127.0.0.1:${address.port}/api/fleet`, {
      headers: { authorization: good },
    })
    expect(rest.status).toBe(200) // fetch goes from 127.0.0.1: another address
    expect(await signIn(good, '127.0.0.3')).toBe('open')
    const ws = new WebSocket(url, { localAddress: '127.0.0.2' })
    ws.on('error', () => {})
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { headers: object }]
    expect(res.headers).toHaveProperty('retry-after')
    ws.terminate()
  })

  it.each([['0'], ['x']])(
    'stop start-up on RATE_LIMIT_AUTH_FAILURES_PER_MIN=%s, naming the variable',
    async (value) => {
      await expect(start({ RATE_LIMIT_AUTH_FAILURES_PER_MIN: value })).rejects.toThrow(
        /RATE_LIMIT_AUTH_FAILURES_PER_MIN/,
      )
    },
  )
})
