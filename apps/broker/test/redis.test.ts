import { Redis } from 'ioredis'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import type { BrokerOptions } from '../src/index.ts'
import {
  collect,
  connectAs,
  dropClusterKeys,
  nextMessage,
  optionsFor,
  SECRET,
  startTestBroker,
  TEST_REDIS_URL,
  testClusterName,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'
import { RawClient } from './raw-client.ts'
import { signDeviceToken } from '@skyline/auth'

// With REDIS_URL the broker keeps sessions and retained messages in Redis and routes
// through Redis pub/sub, so they survive a restart and several brokers serve one fleet.
// Runs against the machine's Redis (CI has one), under cluster names of its own.
describe('Redis persistence and clustering', () => {
  const brokers: TestBroker[] = []
  const clients: MqttClient[] = []
  const cluster = testClusterName('redis')
  const others: string[] = []
  const fleet = 'f1'

  const start = async (options: Partial<BrokerOptions> = {}) => {
    const tb = await startTestBroker({ redisUrl: TEST_REDIS_URL, cluster, ...options })
    brokers.push(tb)
    return tb
  }
  const track = (c: MqttClient) => (clients.push(c), c)

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    await Promise.all(brokers.splice(0).map((b) => b.close()))
  })
  afterAll(async () => {
    await dropClusterKeys(cluster)
    for (const other of others) await dropClusterKeys(other, `${TEST_REDIS_URL}/4`)
  })

  it('keeps a retained status across a broker restart', async () => {
    const first = await start()
    const d = track(await connectAs(first.url, { role: 'drone', sub: 'd1', fleet }))
    await d.publishAsync(`fleet/${fleet}/drones/d1/status`, '{"online":true}', {
      qos: 1,
      retain: true,
    })
    await d.endAsync()
    await first.close()
    brokers.length = 0

    const second = await start()
    const late = track(await connectAs(second.url, { role: 'service', sub: 'late' }))
    const retained = nextMessage(late)
    await late.subscribeAsync(`fleet/${fleet}/drones/+/status`, { qos: 1 })
    const got = await retained
    expect(got.payload).toBe('{"online":true}')
    expect(got.packet.retain).toBe(true)
  })

  it('keeps a persistent session and its queued QoS 1 messages across a broker restart', async () => {
    const ingest = { role: 'service', sub: 'ingest' } as const
    const first = await start()
    const sub = track(await connectAs(first.url, ingest, { clean: false }))
    await sub.subscribeAsync(`fleet/${fleet}/drones/+/events`, { qos: 1 })
    await sub.endAsync()
    const d = track(await connectAs(first.url, { role: 'drone', sub: 'd2', fleet }))
    for (let i = 0; i < 3; i++)
      await d.publishAsync(`fleet/${fleet}/drones/d2/events`, `e${i}`, { qos: 1 })
    await d.endAsync()
    await first.close()
    brokers.length = 0

    const second = await start()
    const again = track(mqtt.connect(second.url, await optionsFor(ingest, { clean: false })))
    const seen = collect(again)
    const all = nextMessage(again, () => seen.length === 3)
    await all
    expect(seen.map((m) => m.payload)).toEqual(['e0', 'e1', 'e2'])
  })

  it('routes a message published on one broker to a subscriber on another', async () => {
    const a = await start()
    const b = await start()
    const sub = track(await connectAs(b.url, { role: 'service', sub: 'on-b' }))
    await sub.subscribeAsync(`fleet/${fleet}/drones/+/telemetry`, { qos: 0 })
    const pub = track(await connectAs(a.url, { role: 'drone', sub: 'd3', fleet }))
    // The subscription travels to broker A through Redis: retry until it is there.
    const arrival = nextMessage(sub, undefined, 5_000)
    const retry = setInterval(() => pub.publish(`fleet/${fleet}/drones/d3/telemetry`, 'across'), 50)
    try {
      expect((await arrival).payload).toBe('across')
    } finally {
      clearInterval(retry)
    }
  })

  it('sends a returning persistent session its CONNACK before any message [MQTT-3.2.0-1]', async () => {
    // Issue 17, item 4: aedes restores the session's subscriptions before it writes the
    // CONNACK, and wrote what the cluster published in between ahead of it; mqtt.js
    // then timed out waiting for the CONNACK, again and again while messages streamed.
    const a = await start()
    const b = await start()
    const claims = { role: 'service', sub: 'returning' } as const
    const sub = track(await connectAs(a.url, claims, { clean: false }))
    await sub.subscribeAsync(`fleet/${fleet}/drones/+/commands`, { qos: 1 })
    const ops = track(await connectAs(b.url, { role: 'service', sub: 'ops' }))
    let streaming = true
    const stream = (async () => {
      while (streaming)
        await ops.publishAsync(`fleet/${fleet}/drones/d8/commands`, 'go', { qos: 1 })
    })()
    try {
      await nextMessage(sub, undefined, 5_000) // B routes to the session now
      await sub.endAsync()
      const token = Buffer.from(await signDeviceToken(SECRET, claims))
      for (let i = 0; i < 10; i++) {
        const raw = await RawClient.open(a.listening.mqtt.port)
        try {
          raw.sendConnect('returning', 'returning', token, false)
          expect((await raw.next()).cmd).toBe('connack')
        } finally {
          raw.destroy()
        }
      }
    } finally {
      streaming = false
      await stream
    }
  })

  it('delivers every QoS 1 message to a session whose messages leave Redis out of order', async () => {
    // Issue 17: a message is routed once the persistence has queued it for every
    // persistent session it matches, one Redis write per session. A message that two
    // sessions match is routed after one published later that only one matches, and
    // aedes dropped any message whose per-broker counter was below the highest it had
    // delivered to that client (its "dedupe"; moscajs/aedes#955): the api's session lost
    // a drone's message whenever an observer's session matched some topics and not others.
    const tb = await start()
    const all = track(await connectAs(tb.url, { role: 'service', sub: 'all' }, { clean: false }))
    await all.subscribeAsync({
      [`fleet/${fleet}/drones/+/telemetry`]: { qos: 1 },
      [`fleet/${fleet}/drones/+/events`]: { qos: 1 },
    })
    const some = track(await connectAs(tb.url, { role: 'service', sub: 'some' }, { clean: false }))
    await some.subscribeAsync(`fleet/${fleet}/drones/+/telemetry`, { qos: 1 })
    const seen = collect(all)
    const drones = await Promise.all(
      ['d10', 'd11', 'd12', 'd13'].map(async (id) =>
        track(await connectAs(tb.url, { role: 'drone', sub: id, fleet })),
      ),
    )
    const perDrone = 50
    const sent = drones.flatMap((d, n) =>
      Array.from({ length: perDrone }, (_, i) =>
        d.publishAsync(
          `fleet/${fleet}/drones/d1${n}/${i % 2 === 0 ? 'telemetry' : 'events'}`,
          `d1${n}:${i}`,
          { qos: 1 },
        ),
      ),
    )
    await Promise.all(sent)
    const total = drones.length * perDrone
    await vi.waitFor(() => expect(new Set(seen.map((m) => m.payload)).size).toBe(total), {
      timeout: 10_000,
      interval: 50,
    })
  })

  it('delivers a message once to a client whose two subscriptions match it', async () => {
    const a = await start()
    const b = await start()
    const sub = track(await connectAs(b.url, { role: 'service', sub: 'twice' }, { clean: false }))
    await sub.subscribeAsync({
      [`fleet/${fleet}/#`]: { qos: 1 },
      [`fleet/${fleet}/drones/+/telemetry`]: { qos: 1 },
    })
    const seen = collect(sub)
    const pub = track(await connectAs(a.url, { role: 'drone', sub: 'd14', fleet }))
    // The subscriptions travel to broker A through Redis: publish until one arrives.
    let n = 0
    await vi.waitFor(
      async () => {
        await pub.publishAsync(`fleet/${fleet}/drones/d14/telemetry`, `p${n++}`, { qos: 1 })
        expect(seen.length).toBeGreaterThan(0)
      },
      { timeout: 5_000, interval: 50 },
    )
    for (let i = 0; i < 20; i++)
      await pub.publishAsync(`fleet/${fleet}/drones/d14/telemetry`, `q${i}`, { qos: 1 })
    await pub.publishAsync(`fleet/${fleet}/drones/d14/events`, 'end', { qos: 1 })
    const wanted = [...Array.from({ length: 20 }, (_, i) => `q${i}`), 'end']
    const got = () => seen.map((m) => m.payload).filter((p) => wanted.includes(p))
    // Every one arrives (MQTT orders a topic's messages, not the two topics' together) ...
    await vi.waitFor(() => expect(new Set(got()).size).toBe(wanted.length), { timeout: 5_000 })
    // ... and once: the copy for the second subscription is dropped. Once the marker of
    // the second topic is in, a late copy would be too.
    const marker = nextMessage(sub, (topic) => topic.endsWith('/status'))
    await pub.publishAsync(`fleet/${fleet}/drones/d14/status`, 'after', { qos: 1 })
    await marker
    expect(got().sort()).toEqual([...wanted].sort())
  })

  it('keeps clusters on one Redis apart, whatever database each names', async () => {
    // Issue 14, item 2: pub/sub ignores the database number.
    const other = testClusterName('other')
    others.push(other)
    const a = await start({ redisUrl: `${TEST_REDIS_URL}/3` })
    const b = await start({ redisUrl: `${TEST_REDIS_URL}/4`, cluster: other })
    const onA = track(await connectAs(a.url, { role: 'service', sub: 'on-a' }))
    const onB = track(await connectAs(b.url, { role: 'service', sub: 'on-b' }))
    await onA.subscribeAsync(`fleet/${fleet}/#`, { qos: 0 })
    await onB.subscribeAsync(`fleet/${fleet}/#`, { qos: 0 })
    const seenOnB = collect(onB)

    // A's own subscriber hears it only once Redis has routed it ...
    const droneA = track(await connectAs(a.url, { role: 'drone', sub: 'd5', fleet }))
    const routed = nextMessage(onA)
    droneA.publish(`fleet/${fleet}/drones/d5/telemetry`, 'cluster a')
    expect((await routed).payload).toBe('cluster a')
    // ... and whatever Redis routed to B's connection before B's own message comes first.
    const droneB = track(await connectAs(b.url, { role: 'drone', sub: 'd5', fleet }))
    const marker = nextMessage(onB, (topic) => topic.endsWith('/telemetry'))
    droneB.publish(`fleet/${fleet}/drones/d5/telemetry`, 'cluster b')
    expect((await marker).payload).toBe('cluster b')
    expect(seenOnB.map((m) => m.payload)).toEqual(['cluster b'])
  })

  it('keeps its keys under its cluster name', async () => {
    const tb = await start()
    const d = track(await connectAs(tb.url, { role: 'drone', sub: 'd6', fleet }))
    const topic = `fleet/${fleet}/drones/d6/status`
    await d.publishAsync(topic, 'up', { qos: 1, retain: true })
    const redis = new Redis(TEST_REDIS_URL)
    try {
      expect(await redis.hexists(`${cluster}:retained`, topic)).toBe(1)
    } finally {
      redis.disconnect()
    }
  })
})
