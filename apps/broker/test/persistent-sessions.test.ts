import { afterAll, afterEach, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { signDeviceToken } from '@skyline/auth'
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

interface Enqueuing {
  subscriptionsByTopic(topic: string): Promise<unknown>
}

// Persistent sessions (clean 0) behave the same whichever store keeps them: aedes's
// memory or Redis. Issue 14, item 1: with Redis, a SUBSCRIBE of several filters was
// never acknowledged; refused filters were stored and queued; a session coming back
// got only 1,000 of its queued messages.
const cluster = testClusterName('sessions')
const stores: [string, Partial<BrokerOptions>][] = [
  ['memory', {}],
  ['Redis', { redisUrl: TEST_REDIS_URL, cluster }],
]

afterAll(() => dropClusterKeys(cluster))

describe.each(stores)('persistent sessions in %s', (store, storeOptions) => {
  const brokers: TestBroker[] = []
  const clients: MqttClient[] = []
  // Every test has fleets of its own: Redis keeps sessions between tests.
  let n = 0
  const fleetName = () => `${store}${++n}`
  const start = async (options: Partial<BrokerOptions> = {}) => {
    const tb = await startTestBroker({ ...storeOptions, ...options })
    brokers.push(tb)
    return tb
  }
  const track = (c: MqttClient) => (clients.push(c), c)

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    await Promise.all(brokers.splice(0).map((b) => b.close()))
  })

  it('acknowledges a SUBSCRIBE of several filters and delivers on each of them', async () => {
    const fleet = fleetName()
    const tb = await start()
    const api = track(
      await connectAs(tb.url, { role: 'service', sub: `api-${fleet}` }, { clean: false }),
    )
    const filters = ['telemetry', 'status', 'events'].map((k) => `fleet/${fleet}/drones/+/${k}`)
    const granted = await api.subscribeAsync(filters, { qos: 1 })
    expect(granted.map((g) => g.qos)).toEqual([1, 1, 1])

    const drone = track(await connectAs(tb.url, { role: 'drone', sub: 'd1', fleet }))
    const seen = collect(api)
    const all = nextMessage(api, () => seen.length === 3)
    for (const kind of ['telemetry', 'status', 'events'])
      await drone.publishAsync(`fleet/${fleet}/drones/d1/${kind}`, kind, { qos: 1 })
    await all
    expect(seen.map((m) => m.payload).sort()).toEqual(['events', 'status', 'telemetry'])
  })

  it('acknowledges a QoS 1 publish only once it is queued for the persistent session', async () => {
    // Issue 17: aedes wrote the PUBACK before routing the message; a broker killed in
    // between had acknowledged messages no queue held, and the devices let them go.
    const fleet = fleetName()
    const tb = await start()
    const api = track(
      await connectAs(tb.url, { role: 'service', sub: `api-${fleet}` }, { clean: false }),
    )
    await api.subscribeAsync(`fleet/${fleet}/drones/+/events`, { qos: 1 })
    await api.endAsync() // away: the message waits in its queue
    // The persistence's look-up of the sessions to queue for, held until the test lets it go.
    const persistence = (tb.broker.aedes as unknown as { persistence: Enqueuing }).persistence
    const lookUp = persistence.subscriptionsByTopic.bind(persistence)
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    let queuing!: () => void
    const reached = new Promise<void>((resolve) => (queuing = resolve))
    persistence.subscriptionsByTopic = async (topic) => {
      if (!topic.endsWith('/d9/events')) return lookUp(topic)
      queuing()
      await gate
      return lookUp(topic)
    }
    const raw = await RawClient.open(tb.listening.mqtt.port)
    try {
      const token = Buffer.from(await signDeviceToken(SECRET, { role: 'drone', sub: 'd9', fleet }))
      raw.sendConnect('d9', 'd9', token, true)
      expect((await raw.next()).cmd).toBe('connack')
      // One read: the PINGREQ is handled while the PUBLISH is being routed.
      raw.sendBytes(
        Buffer.concat([
          mqttPacket.generate({
            cmd: 'publish',
            topic: `fleet/${fleet}/drones/d9/events`,
            payload: 'e',
            qos: 1,
            messageId: 7,
            retain: false,
            dup: false,
          }),
          mqttPacket.generate({ cmd: 'pingreq' }),
        ]),
      )
      await reached
      expect((await raw.next()).cmd).toBe('pingresp') // no PUBACK while the queue write waits
      release()
      const ack = await raw.next()
      expect(ack).toMatchObject({ cmd: 'puback', messageId: 7 })
    } finally {
      raw.destroy()
    }
    const back = track(
      mqtt.connect(
        tb.url,
        await optionsFor({ role: 'service', sub: `api-${fleet}` }, { clean: false }),
      ),
    )
    expect((await nextMessage(back)).payload).toBe('e')
  })

  it('queues nothing for a filter it refused while the session is away', async () => {
    const [mine, other] = [fleetName(), fleetName()]
    const tb = await start()
    const viewer = { role: 'viewer', sub: `ops-${mine}`, fleet: mine } as const
    const first = track(await connectAs(tb.url, viewer, { clean: false }))
    // mqtt.js rejects a SUBACK with any failure in it, and carries the packet.
    await expect(
      first.subscribeAsync([`fleet/${mine}/#`, `fleet/${other}/#`], { qos: 1 }),
    ).rejects.toMatchObject({ packet: { granted: [1, 128] } })
    await first.endAsync()

    const d1 = track(await connectAs(tb.url, { role: 'drone', sub: 'd1', fleet: other }))
    await d1.publishAsync(`fleet/${other}/drones/d1/events`, 'not yours', { qos: 1 })
    const d2 = track(await connectAs(tb.url, { role: 'drone', sub: 'd2', fleet: mine }))
    await d2.publishAsync(`fleet/${mine}/drones/d2/events`, 'yours', { qos: 1 })

    // Queued messages come back in order: a queued 'not yours' would arrive first.
    const again = track(mqtt.connect(tb.url, await optionsFor(viewer, { clean: false })))
    const seen = collect(again)
    await nextMessage(again, (topic) => topic.startsWith(`fleet/${mine}/`))
    expect(seen.map((m) => m.payload)).toEqual(['yours'])
  })

  it('hands a returning session every queued message, past a thousand', async () => {
    const fleet = fleetName()
    const tb = await start({ rateLimit: null })
    const api = { role: 'service', sub: `api-${fleet}` } as const
    const first = track(await connectAs(tb.url, api, { clean: false }))
    await first.subscribeAsync(`fleet/${fleet}/drones/+/events`, { qos: 1 })
    await first.endAsync()

    const total = 1_500
    const drone = track(await connectAs(tb.url, { role: 'drone', sub: 'd1', fleet }))
    await Promise.all(
      Array.from({ length: total }, (_, i) =>
        drone.publishAsync(`fleet/${fleet}/drones/d1/events`, String(i), { qos: 1 }),
      ),
    )

    const again = track(mqtt.connect(tb.url, await optionsFor(api, { clean: false })))
    const seen = collect(again)
    await nextMessage(again, () => seen.length === total, 20_000)
    expect(new Set(seen.map((m) => m.payload)).size).toBe(total)
  })
})
