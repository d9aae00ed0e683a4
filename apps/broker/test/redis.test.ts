import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
import { collect, connectAs, nextMessage, optionsFor, startTestBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// With REDIS_URL the broker keeps sessions and retained messages in Redis and routes
// through Redis pub/sub, so they survive a restart and several brokers serve one fleet.
// Runs against the machine's Redis (CI has one); database 7 is flushed for the test.
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379/7'

describe('Redis persistence and clustering', () => {
  const brokers: TestBroker[] = []
  const clients: MqttClient[] = []
  // Redis pub/sub is not scoped by database: a fresh fleet per run keeps runs apart.
  const fleet = `r${randomBytes(4).toString('hex')}`

  const start = async () => {
    const tb = await startTestBroker({ redisUrl: REDIS_URL })
    brokers.push(tb)
    return tb
  }
  const track = (c: MqttClient) => (clients.push(c), c)

  beforeAll(async () => {
    const redis = new Redis(REDIS_URL)
    await redis.flushdb()
    redis.disconnect()
  })
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    await Promise.all(brokers.splice(0).map((b) => b.close()))
  })
  afterAll(async () => {
    const redis = new Redis(REDIS_URL)
    await redis.flushdb()
    redis.disconnect()
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
})
