import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import { decodeJwt } from 'jose'
import { signDeviceToken } from '@skyline/auth'
import type { Database } from '../src/db/client.ts'
import { CLOSE_UNAUTHORIZED } from '../src/plugins/app/live.ts'
import { DATABASES, SECRET, WAIT, buildApi, get, liveAuth, startBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Issue 16: a token expires on a live connection too. The live stream has no way to
// take a new token on an open socket, so it is closed at the token's exp with 4401, and
// the page asks for a new one.

const viewer = { role: 'viewer', sub: 'v', fleet: 'f1' } as const

describe('tokens that expire on the live stream', () => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance

  beforeAll(async () => {
    broker = await startBroker()
    database = await DATABASES[0]![1]()
    // Pings through injectWS go unanswered: a long lag bound keeps the clients from being
    // dropped as too slow (1008) while the test waits for an exp.
    api = await buildApi(broker.url, database, { LIVE_MAX_LAG_MS: '600000' })
  }, 60_000)
  afterAll(async () => {
    await api?.close()
    await database?.close()
    await broker?.close()
  })

  /** A live client signed in with `token`: its frames, and its close code, reason and time. */
  async function live(token: string) {
    const frames: { type: string }[] = []
    let closed: { code: number; reason: string; at: number } | undefined
    const ws: WebSocket = await api.injectWS(
      '/api/live',
      {},
      {
        onInit: (socket) => {
          socket.on('message', (data: Buffer) =>
            frames.push(JSON.parse(data.toString()) as { type: string }),
          )
          socket.on('close', (code: number, reason: Buffer) => {
            closed = { code, reason: reason.toString(), at: Date.now() }
          })
        },
      },
    )
    ws.send(await liveAuth(token))
    return { ws, frames, closed: () => closed }
  }

  it('closes a live client with 4401 at its token’s exp, and keeps one whose token has none', async () => {
    // exp is in whole seconds: 2 s from now puts it 1 to 2 s away.
    const expiring = await signDeviceToken(SECRET, viewer, 2)
    const exp = decodeJwt(expiring).exp! * 1000
    const shortLived = await live(expiring)
    const lasting = await live(await signDeviceToken(SECRET, viewer))
    await vi.waitFor(() => {
      expect(shortLived.frames[0]?.type).toBe('snapshot')
      expect(lasting.frames[0]?.type).toBe('snapshot')
    }, WAIT)
    expect(shortLived.closed()).toBeUndefined() // signed in and streaming until its exp

    await vi.waitFor(() => expect(shortLived.closed()).toBeDefined(), WAIT)
    const closed = shortLived.closed()!
    expect(closed.code).toBe(CLOSE_UNAUTHORIZED)
    expect(closed.reason).toMatch(/token expired/)
    expect(closed.at).toBeGreaterThanOrEqual(exp)
    expect(closed.at - exp).toBeLessThan(1_000)

    // The one without exp stays, past the other's exp, and is still served.
    expect(lasting.closed()).toBeUndefined()
    expect(lasting.ws.readyState).toBe(lasting.ws.OPEN)
    expect(api.live.size).toBe(1)
    const before = lasting.frames.length
    lasting.ws.send('{"type":"nonsense"}')
    await vi.waitFor(
      () =>
        expect(lasting.frames.slice(before)).toContainEqual(
          expect.objectContaining({ type: 'error' }),
        ),
      WAIT,
    )
    const metrics = await api.inject({ method: 'GET', url: '/metrics' })
    expect(metrics.body).toContain('skyline_live_dropped_total{reason="token_expired"} 1')
    lasting.ws.terminate()
    await vi.waitFor(() => expect(api.live.size).toBe(0), WAIT)
  })

  it('refuses an expired token at once: REST 401, live 4401', async () => {
    const expired = await signDeviceToken(SECRET, viewer, -1)
    const res = await get(api, '/api/drones', `Bearer ${expired}`)
    expect(res.statusCode).toBe(401)
    expect(res.json()).toMatchObject({ error: { code: 'unauthorized' } })
    const c = await live(expired)
    await vi.waitFor(() => expect(c.closed()?.code).toBe(CLOSE_UNAUTHORIZED), WAIT)
    expect(c.frames).toEqual([])
  })
})
