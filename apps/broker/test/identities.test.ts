import { afterEach, describe, expect, it, vi } from 'vitest'
import type { MqttClient } from 'mqtt'
import type { DeviceClaims } from '@skyline/auth'
import type { BrokerOptions } from '../src/index.ts'
import { closedWithin, collect, nextMessage, startTestBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Issue 14: limits were per connection, so one drone token with 2,000 connections took
// every connection the broker had, and ten connections of one token published ten
// times one's rate. Now connections are bounded and the rate budget shared per identity
// (role, fleet and id of the token).

const d1 = { role: 'drone', sub: 'd1', fleet: 'f1' } as const
const telemetry = 'fleet/f1/drones/d1/telemetry'

let tb: TestBroker | undefined
afterEach(async () => {
  await tb?.close()
  tb = undefined
})

async function start(options: Partial<BrokerOptions> = {}): Promise<TestBroker> {
  tb = await startTestBroker(options)
  return tb
}

const metric = (t: TestBroker, name: 'dropped' | 'disconnects', reason: string) =>
  t.broker.metrics.value(t.broker.metrics[name], { reason })
const identities = (t: TestBroker) => t.broker.metrics.value(t.broker.metrics.identities)

/** `n` connections of `claims`, one after the other, with client ids `<sub>-0`, `<sub>-1`, ... */
async function connections(t: TestBroker, claims: DeviceClaims, n: number): Promise<MqttClient[]> {
  const clients: MqttClient[] = []
  for (let i = 0; i < n; i++)
    clients.push(await t.connect(claims, { clientId: `${claims.sub}-${i}` }))
  return clients
}

describe('connections per identity', () => {
  it('keeps one connection per drone: a newer one closes the older, whatever its client id', async () => {
    const t = await start()
    const first = await t.connect(d1, { clientId: 'd1-a' })
    const closed = closedWithin(first)
    const second = await t.connect(d1, { clientId: 'd1-b' })
    await closed
    expect(second.connected).toBe(true)
    expect(await metric(t, 'disconnects', 'identity_takeover')).toBe(1)
    // Another drone, and the same id in another fleet, are other identities.
    const other = await t.connect({ role: 'drone', sub: 'd2', fleet: 'f1' })
    const elsewhere = await t.connect(
      { role: 'drone', sub: 'd1', fleet: 'f2' },
      { clientId: 'd1-c' },
    )
    await second.publishAsync(telemetry, '{}', { qos: 1 })
    expect([second.connected, other.connected, elsewhere.connected]).toEqual([true, true, true])
    expect(await identities(t)).toBe(3)
  })

  it('leaves the broker its connections for other devices when one token keeps connecting', async () => {
    const t = await start({ maxConnections: 3 })
    let last: MqttClient | undefined
    for (let i = 0; i < 6; i++) {
      const closed = last && closedWithin(last)
      last = await t.connect(d1, { clientId: `d1-${i}` })
      await closed
    }
    const d2 = await t.connect({ role: 'drone', sub: 'd2', fleet: 'f1' })
    const station = await t.connect({ role: 'station', sub: 's1', fleet: 'f1' })
    expect([last!.connected, d2.connected, station.connected]).toEqual([true, true, true])
    expect(await metric(t, 'disconnects', 'identity_takeover')).toBe(5)
  })

  it('lets a viewer or a service hold up to its bound, closing the oldest beyond it', async () => {
    const t = await start({ connectionsPerIdentity: { device: 1, user: 3 } })
    const viewer = { role: 'viewer', sub: 'ops1', fleet: 'f1' } as const
    const [oldest, ...rest] = await connections(t, viewer, 3)
    const closed = closedWithin(oldest!)
    const newest = await t.connect(viewer, { clientId: 'ops1-3' })
    await closed
    expect([...rest, newest].map((c) => c.connected)).toEqual([true, true, true])
    const api = await connections(t, { role: 'service', sub: 'api' }, 3)
    expect(api.map((c) => c.connected)).toEqual([true, true, true])
  })

  it('leaves a reconnection under the same client id to the usual takeover, counted once', async () => {
    const t = await start()
    const old = await t.connect(d1, { clientId: 'd1' })
    const closed = closedWithin(old)
    const fresh = await t.connect(d1, { clientId: 'd1' })
    await closed
    await fresh.publishAsync(telemetry, '{}', { qos: 1 })
    expect(fresh.connected).toBe(true)
    expect(await metric(t, 'disconnects', 'identity_takeover')).toBe(0)
    expect(await identities(t)).toBe(1)
  })

  it('forgets an identity once its last connection is gone, however it went', async () => {
    const t = await start({ connectionsPerIdentity: { device: 2, user: 10 } })
    // Connections closed by the client, taken over by identity and by client id, and
    // one the broker closes for a protocol violation.
    const first = await connections(t, d1, 2)
    const c = await t.connect(d1, { clientId: 'd1-2' }) // takes over d1-0
    const c2 = await t.connect(d1, { clientId: 'd1-2' }) // takes over c by client id
    const viewers = await connections(t, { role: 'viewer', sub: 'v', fleet: 'f1' }, 4)
    const d2 = await t.connect({ role: 'drone', sub: 'd2', fleet: 'f1' })
    expect(await identities(t)).toBe(3)
    const kicked = closedWithin(d2)
    d2.publish('fleet/f1/drones/d2/\u0000', 'x', { qos: 0 })
    await kicked
    await vi.waitFor(async () => expect(await identities(t)).toBe(2))
    await Promise.all([...first, c, c2, ...viewers].map((client) => client.endAsync()))
    await vi.waitFor(async () => expect(await identities(t)).toBe(0))
  })
})

describe('publish budget per identity', () => {
  it('shares one budget among all connections of an identity', async () => {
    let now = 0
    const t = await start({
      rateLimit: { ratePerS: 10, burst: 5 },
      clock: () => now,
      connectionsPerIdentity: { device: 3, user: 10 },
    })
    const watcher = await t.connect({ role: 'service', sub: 'watcher' })
    await watcher.subscribeAsync('fleet/#', { qos: 1 })
    const seen = collect(watcher)
    const drones = await connections(t, d1, 3)
    for (const [i, d] of drones.entries()) {
      for (let j = 0; j < 5; j++) await d.publishAsync(telemetry, `${i}.${j}`, { qos: 1 })
    }
    expect(await metric(t, 'dropped', 'rate_limited')).toBe(10)
    now += 1_000
    const sentinel = nextMessage(watcher, () => seen.at(-1)?.payload === 'after')
    await drones[2]!.publishAsync(telemetry, 'after', { qos: 1 })
    await sentinel
    expect(seen.map((m) => m.payload)).toEqual(['0.0', '0.1', '0.2', '0.3', '0.4', 'after'])
  })

  it('carries the budget over to the connection that takes over, and frees it with the last', async () => {
    const now = 0
    const t = await start({ rateLimit: { ratePerS: 1, burst: 2 }, clock: () => now })
    const first = await t.connect(d1, { clientId: 'd1-a' })
    await first.publishAsync(telemetry, '1', { qos: 1 })
    await first.publishAsync(telemetry, '2', { qos: 1 })
    const second = await t.connect(d1, { clientId: 'd1-b' }) // takes over: no fresh burst
    await second.publishAsync(telemetry, '3', { qos: 1 })
    expect(await metric(t, 'dropped', 'rate_limited')).toBe(1)
    await second.endAsync()
    await vi.waitFor(async () => expect(await identities(t)).toBe(0))
    const later = await t.connect(d1, { clientId: 'd1-c' })
    await later.publishAsync(telemetry, '4', { qos: 1 })
    expect(await metric(t, 'dropped', 'rate_limited')).toBe(1)
  })
})
