import { describe, expect, it } from 'vitest'
import { signDeviceToken } from '@skyline/auth'
import {
  SECRET,
  collect,
  connectAs,
  closedWithin,
  nextMessage,
  rawBrokerPerTest,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'
import type { RawClient } from './raw-client.ts'

const drone = { role: 'drone', sub: 'd1', fleet: 'f1' } as const
const watcherClaims = { role: 'service', sub: 'watcher' } as const

const { start, raw } = rawBrokerPerTest()

const metric = (
  t: TestBroker,
  name: 'dropped' | 'disconnects' | 'authFailures',
  labels: Record<string, string>,
) => t.broker.metrics.value(t.broker.metrics[name], labels)

describe('connection refusals', () => {
  it('answers an empty client id with clean session 0 with CONNACK 0x02 [MQTT-3.1.3-8]', async () => {
    const t = await start()
    const r = await raw(t)
    const password = Buffer.from(await signDeviceToken(SECRET, drone))
    r.sendConnectWithEmptyIdAndPersistentSession('d1', password)
    expect(await r.next()).toMatchObject({ cmd: 'connack', returnCode: 2 })
    await r.closed
  })

  it('accepts an empty client id with clean session 1, assigning one', async () => {
    const t = await start()
    const r = await raw(t)
    const password = Buffer.from(await signDeviceToken(SECRET, drone))
    r.sendConnect('', 'd1', password)
    expect(await r.next()).toMatchObject({ cmd: 'connack', returnCode: 0 })
  })

  it.each([
    [
      'a token signed with another secret',
      async () => signDeviceToken('x'.repeat(40), drone),
      'd1',
    ],
    ['garbage as the token', () => Promise.resolve('not-a-jwt'), 'd1'],
    ['an expired token', async () => signDeviceToken(SECRET, drone, -10), 'd1'],
    ['a username that is not the token subject', async () => signDeviceToken(SECRET, drone), 'd2'],
  ])('refuses %s with CONNACK not authorized', async (_case, token, username) => {
    const t = await start()
    const connecting = connectAs(t.url, drone, {
      username,
      password: await token(),
      clientId: username,
    })
    await expect(connecting).rejects.toMatchObject({ code: 5 })
    expect(await t.broker.metrics.value(t.broker.metrics.authFailures)).toBe(1)
  })

  it('refuses a client without credentials unless anonymous access is on', async () => {
    const t = await start()
    await expect(
      connectAs(t.url, drone, { username: undefined, password: undefined }),
    ).rejects.toMatchObject({ code: 5 })
    await t.close()
    const open = await start({ allowAnonymous: true })
    const client = await connectAs(open.url, drone, { username: undefined, password: undefined })
    await client.endAsync()
  })

  it('refuses an anonymous client a will outside fleet/#', async () => {
    const t = await start({ allowAnonymous: true })
    const will = {
      topic: '$SYS/x/new/clients',
      payload: Buffer.from('d1'),
      qos: 0 as const,
      retain: false,
    }
    await expect(
      connectAs(t.url, drone, { username: undefined, password: undefined, will }),
    ).rejects.toMatchObject({ code: 5 })
  })

  it('keeps devices that pick the same client id apart: no takeover across fleets or roles', async () => {
    const t = await start()
    const victim = await t.connect(drone, { clientId: 'd1' })
    // The same id in another fleet, and a viewer named like the drone, with its client id.
    await t.connect({ role: 'drone', sub: 'd1', fleet: 'f2' }, { clientId: 'd1' })
    await t.connect({ role: 'viewer', sub: 'd1', fleet: 'f1' }, { clientId: 'd1' })
    await victim.publishAsync('fleet/f1/drones/d1/telemetry', 'still here', { qos: 1 })
    expect(victim.connected).toBe(true)
    // The same device coming back under the same client id takes over, as MQTT says.
    const closed = closedWithin(victim)
    await t.connect(drone, { clientId: 'd1' })
    await closed
  })

  it('answers connections beyond the cap with server unavailable', async () => {
    const t = await start({ maxConnections: 2 })
    await t.connect(watcherClaims)
    await t.connect({ role: 'service', sub: 'second' })
    await expect(t.connect({ role: 'service', sub: 'third' })).rejects.toMatchObject({ code: 3 })
  })
})

describe('slow subscribers', () => {
  /** A subscriber that subscribes to `fleet/#` and then never reads its socket again. */
  async function frozenSubscriber(t: TestBroker, qos: 0 | 1): Promise<RawClient> {
    const r = await raw(t)
    r.sendConnect(
      'frozen',
      'frozen',
      Buffer.from(await signDeviceToken(SECRET, { role: 'service', sub: 'frozen' })),
    )
    expect(await r.next()).toMatchObject({ cmd: 'connack', returnCode: 0 })
    r.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'fleet/#', qos }] })
    expect(await r.next()).toMatchObject({ cmd: 'suback' })
    r.socket.pause()
    return r
  }

  it('drops QoS 0 deliveries to a subscriber that stopped reading, even of QoS 1 publishes', async () => {
    const t = await start({ rateLimit: null })
    await frozenSubscriber(t, 0)
    const healthy = await t.connect(watcherClaims)
    await healthy.subscribeAsync('fleet/#', { qos: 1 })
    const seen = collect(healthy)
    const d = await t.connect(drone)
    const payload = Buffer.alloc(16 * 1024, 'x')
    for (let i = 0; i < 400; i++)
      await d.publishAsync('fleet/f1/drones/d1/events', payload, { qos: 1 })
    const last = nextMessage(healthy, () => seen.length === 400, 20_000)
    await last
    expect(await metric(t, 'dropped', { reason: 'slow_subscriber' })).toBeGreaterThan(0)
  })

  it('disconnects a QoS 1 subscriber that stops reading once too much is queued for it', async () => {
    const t = await start({ rateLimit: null, maxQueuedBytes: 256 * 1024 })
    await frozenSubscriber(t, 1)
    const d = await t.connect(drone)
    // Loopback kernel buffers take several MB before the broker's own queue grows.
    const payload = Buffer.alloc(32 * 1024, 'x')
    for (let i = 0; i < 2_000; i++) {
      await d.publishAsync('fleet/f1/drones/d1/events', payload, { qos: 1 })
      if ((await metric(t, 'disconnects', { reason: 'slow_subscriber' })) > 0) break
    }
    expect(await metric(t, 'disconnects', { reason: 'slow_subscriber' })).toBe(1)
  })
})

describe('packet size', () => {
  it('disconnects a client whose packet exceeds the limit and keeps serving others', async () => {
    const t = await start({ maxPacketBytes: 1024 })
    const watcher = await t.connect(watcherClaims)
    await watcher.subscribeAsync('fleet/#', { qos: 1 })
    const d = await t.connect(drone)
    const fits = nextMessage(watcher)
    await d.publishAsync('fleet/f1/drones/d1/events', Buffer.alloc(900, 'a'), { qos: 1 })
    expect((await fits).payload).toHaveLength(900)

    const closed = closedWithin(d)
    d.publish('fleet/f1/drones/d1/events', Buffer.alloc(2_000, 'b'), { qos: 0 })
    await closed
    expect(await metric(t, 'disconnects', { reason: 'packet_too_large' })).toBe(1)
    expect(watcher.connected).toBe(true)
  })
})

describe('publish rate limit', () => {
  it('drops publishes above the rate and burst, and lets them through again as tokens refill', async () => {
    let now = 0
    const t = await start({ rateLimit: { ratePerS: 10, burst: 5 }, clock: () => now })
    const watcher = await t.connect(watcherClaims)
    await watcher.subscribeAsync('fleet/#', { qos: 1 })
    const seen = collect(watcher)
    const d = await t.connect(drone)
    for (let i = 0; i < 20; i++)
      await d.publishAsync('fleet/f1/drones/d1/events', String(i), { qos: 1 })
    expect(await metric(t, 'dropped', { reason: 'rate_limited' })).toBe(15)

    now += 1_000 // ten tokens later
    const sentinel = nextMessage(watcher, () => seen.at(-1)?.payload === 'after')
    await d.publishAsync('fleet/f1/drones/d1/events', 'after', { qos: 1 })
    await sentinel
    expect(seen.map((m) => m.payload)).toEqual(['0', '1', '2', '3', '4', 'after'])
    expect(d.connected).toBe(true)
  })

  it('disconnects a client that keeps flooding past the flood window', async () => {
    let now = 0
    const t = await start({
      rateLimit: { ratePerS: 1, burst: 1 },
      floodWindowMs: 500,
      clock: () => now,
    })
    const d = await t.connect(drone)
    await d.publishAsync('fleet/f1/drones/d1/telemetry', 'ok', { qos: 1 })
    await d.publishAsync('fleet/f1/drones/d1/telemetry', 'dropped', { qos: 1 })
    expect(d.connected).toBe(true)
    now += 600 // still no whole token, and over the limit for longer than the window
    const closed = closedWithin(d)
    d.publish('fleet/f1/drones/d1/telemetry', 'flood', { qos: 0 })
    await closed
    expect(await metric(t, 'disconnects', { reason: 'flood' })).toBe(1)
  })

  it('counts refused publishes against the budget: flooding them ends in a disconnect', async () => {
    let now = 0
    const t = await start({
      rateLimit: { ratePerS: 1, burst: 1 },
      floodWindowMs: 500,
      clock: () => now,
    })
    const d = await t.connect(drone)
    const foreign = 'fleet/f1/drones/d2/telemetry' // refused by the ACL
    await d.publishAsync(foreign, 'refused', { qos: 1 })
    await d.publishAsync(foreign, 'over the rate', { qos: 1 })
    expect(await metric(t, 'dropped', { reason: 'not_authorized' })).toBe(1)
    expect(await metric(t, 'dropped', { reason: 'rate_limited' })).toBe(1)
    now += 600
    const closed = closedWithin(d)
    d.publish(foreign, 'flood', { qos: 0 })
    await closed
    expect(await metric(t, 'disconnects', { reason: 'flood' })).toBe(1)
  })

  it('does not limit the service role', async () => {
    const now = 0
    const t = await start({ rateLimit: { ratePerS: 1, burst: 1 }, clock: () => now })
    const api = await t.connect({ role: 'service', sub: 'api' })
    for (let i = 0; i < 10; i++)
      await api.publishAsync('fleet/f1/drones/d1/commands', String(i), { qos: 1 })
    expect(await metric(t, 'dropped', { reason: 'rate_limited' })).toBe(0)
  })
})

describe('QoS 2 exactly once', () => {
  it('routes a retransmitted QoS 2 PUBLISH (DUP) only once', async () => {
    const t = await start()
    const watcher = await t.connect(watcherClaims)
    await watcher.subscribeAsync('fleet/#', { qos: 2 })
    const seen = collect(watcher)
    const r = await raw(t)
    const password = Buffer.from(await signDeviceToken(SECRET, { role: 'service', sub: 'api' }))
    r.sendConnect('api', 'api', password)
    expect(await r.next()).toMatchObject({ cmd: 'connack', returnCode: 0 })
    const publish = {
      cmd: 'publish',
      topic: 'fleet/f1/drones/d1/commands',
      payload: Buffer.from('once'),
      qos: 2,
      messageId: 7,
      retain: false,
    } as const
    r.send({ ...publish, dup: false })
    expect(await r.next()).toMatchObject({ cmd: 'pubrec', messageId: 7 })
    r.send({ ...publish, dup: true }) // PUBREC lost, say: the sender tries again
    expect(await r.next()).toMatchObject({ cmd: 'pubrec', messageId: 7 })
    r.send({ cmd: 'pubrel', messageId: 7 })
    expect(await r.next()).toMatchObject({ cmd: 'pubcomp', messageId: 7 })
    const sentinel = nextMessage(watcher, () => seen.at(-1)?.payload === 'next')
    r.send({ ...publish, payload: Buffer.from('next'), messageId: 8, dup: false })
    await sentinel
    expect(seen.map((m) => m.payload)).toEqual(['once', 'next'])
  })
})
