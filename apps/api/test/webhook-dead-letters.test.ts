// The webhook's dead letters on REST (GET /api/alerts/webhook/dead-letters): a real local
// receiver that refuses everything, alerts opened through the one writer, and the changes
// the sender gave up on, shown to operators of their fleets only, a page at a time.
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { WebhookDeadLetter } from '@skyline/schemas'
import type { Database } from '../src/db/client.ts'
import { WAIT, bearer, buildApi, freshPglite, get, startBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

const URL = '/api/alerts/webhook/dead-letters'

describe('the webhook dead letters on REST', () => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance
  let receiver: Server
  let refused = 0

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        refused++
        res.writeHead(503).end('down for maintenance')
      })
    })
    receiver.listen(0, '127.0.0.1')
    await once(receiver, 'listening')
    const { port } = receiver.address() as AddressInfo
    broker = await startBroker()
    database = await freshPglite()
    api = await buildApi(broker.url, database, {
      ALERT_WEBHOOK_URL: `http://127.0.0.1:${port}/hooks`,
      ALERT_WEBHOOK_SECRET: 'webhook-secret-for-the-tests',
      ALERT_WEBHOOK_MAX_ATTEMPTS: '2',
      ALERT_WEBHOOK_BACKOFF_MS: '20',
    })
  }, 60_000)
  afterAll(async () => {
    await api?.close()
    await database?.close()
    await broker?.close()
    receiver?.close()
  })

  const page = async (query: string, authorization?: string) => {
    const res = await get(api, `${URL}?${query}`, authorization)
    expect(res.statusCode, res.body).toBe(200)
    return res.json<{ deadLetters: WebhookDeadLetter[]; nextCursor: string | null }>()
  }

  it('shows an operator the changes given up on, of its fleets, the latest first, a page at a time', async () => {
    const opening = (fleetId: string, stationId: string) => ({
      fleetId,
      kind: 'station_offline' as const,
      severity: 'warning' as const,
      subject: { stationId },
      facts: { offlineSince: null },
    })
    const { changed } = await api.alerts.service.apply({
      open: [opening('fa', 's1'), opening('fa', 's2'), opening('fb', 's1')],
      resolve: [],
    })
    expect(changed).toHaveLength(3)

    // Every change refused twice (its attempts), then dead.
    const all = await vi.waitFor(async () => {
      const body = await page('limit=200')
      expect(body.deadLetters).toHaveLength(3)
      return body.deadLetters
    }, WAIT)
    expect(refused).toBe(6)
    const ofFa = changed.find((a) => a.fleetId === 'fa' && a.subject.stationId === 's1')!
    const letter = all.find((d) => d.alertId === ofFa.id)
    expect(letter).toMatchObject({
      fleetId: 'fa',
      attempts: 2,
      alert: { id: ofFa.id, kind: 'station_offline', state: 'open' },
    })
    expect(letter?.lastError).toContain('503')
    const times = all.map((d) => Date.parse(d.deadAt))
    expect(times).toEqual([...times].sort((a, b) => b - a))

    // An operator of fa sees fa's only; a page of one, then the next.
    const ops = await bearer({ role: 'service', sub: 'ops-fa', fleet: 'fa' })
    const first = await page('limit=1', ops)
    expect(first.deadLetters.map((d) => d.fleetId)).toEqual(['fa'])
    expect(first.nextCursor).not.toBeNull()
    const second = await page(`limit=1&cursor=${first.nextCursor}`, ops)
    expect(second.deadLetters.map((d) => d.fleetId)).toEqual(['fa'])
    expect(second.deadLetters[0]!.id).not.toBe(first.deadLetters[0]!.id)
    expect(second.nextCursor).toBeNull()
    expect((await page('fleet=fb', ops)).deadLetters).toEqual([])

    // Not for a viewer, nor without a token; a bad query is a 400.
    const viewer = await bearer({ role: 'viewer', sub: 'v', fleet: 'fa' })
    expect((await get(api, URL, viewer)).statusCode).toBe(403)
    expect((await api.inject({ method: 'GET', url: URL })).statusCode).toBe(401)
    const alertsCursor = Buffer.from(`${new Date().toISOString()}|not-a-row`).toString('base64url')
    for (const q of ['limit=0', 'cursor=nope', `cursor=${alertsCursor}`])
      expect((await get(api, `${URL}?${q}`)).statusCode, q).toBe(400)
  })
})
