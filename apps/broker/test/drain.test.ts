import { Redis } from 'ioredis'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import type { DeviceClaims } from '@skyline/auth'
import {
  collect,
  connectAs,
  dropClusterKeys,
  optionsFor,
  startTestBroker,
  TEST_REDIS_URL,
  testClusterName,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Issue 17, item 4: a broker of a cluster that drains (SIGTERM) takes itself out of the
// load balancer's rotation and hands its clients over to the other brokers: closed a
// few at a time, without their wills, their persistent sessions intact in Redis.
const cluster = testClusterName('drain')
afterAll(() => dropClusterKeys(cluster))

const OFFLINE = '{"online":false}'

describe('a broker that drains', () => {
  const brokers: TestBroker[] = []
  const clients: MqttClient[] = []
  let n = 0
  const fleetName = () => `drain${++n}`
  const start = async () => {
    const tb = await startTestBroker({ redisUrl: TEST_REDIS_URL, cluster })
    brokers.push(tb)
    return tb
  }
  const track = (c: MqttClient) => (clients.push(c), c)

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    await Promise.all(brokers.splice(0).map((b) => b.close()))
  })

  /**
   * A drone with a persistent session and a last will on its status, connected to the
   * first of `servers` and reconnecting to the next one (mqtt.js's `servers` list).
   */
  async function movingDrone(servers: TestBroker[], claims: DeviceClaims & { fleet: string }) {
    const options: IClientOptions = await optionsFor(claims, {
      clean: false,
      reconnectPeriod: 50,
      servers: servers.map((t) => ({
        host: '127.0.0.1',
        port: t.listening.mqtt.port,
        protocol: 'mqtt' as const,
      })),
      will: {
        topic: `fleet/${claims.fleet}/drones/${claims.sub}/status`,
        payload: Buffer.from(OFFLINE),
        qos: 1,
        retain: true,
      },
    })
    const drone = track(mqtt.connect(options))
    await new Promise((resolve, reject) => {
      drone.once('connect', resolve)
      drone.once('error', reject)
    })
    await drone.subscribeAsync(`fleet/${claims.fleet}/drones/${claims.sub}/commands`, { qos: 1 })
    return drone
  }

  /** Publishes numbered QoS 1 commands to a drone until stopped; resolves with those acknowledged. */
  function streamCommands(publisher: MqttClient, topic: string) {
    let stopped = false
    const acked: number[] = []
    const done = (async () => {
      for (let i = 0; !stopped; i++) {
        await publisher.publishAsync(topic, String(i), { qos: 1 })
        acked.push(i)
        // A steady stream rather than a flood: a few hundred a second.
        await new Promise((resolve) => setTimeout(resolve, 3))
      }
      return acked
    })()
    return {
      acked,
      stop: () => ((stopped = true), done),
    }
  }

  /** The drones' wills this broker left in Redis (aedes-persistence-redis's `will` list). */
  async function storedWillsOf(tb: TestBroker): Promise<string[]> {
    const redis = new Redis(TEST_REDIS_URL)
    try {
      const keys = await redis.lrange(`${cluster}:will`, 0, -1)
      return keys.filter((k) => k.split(':')[1] === tb.broker.aedes.id)
    } finally {
      redis.disconnect()
    }
  }

  it(
    'hands a persistent session over to another broker: no will, no QoS 1 message lost',
    { timeout: 30_000 },
    async () => {
      const fleet = fleetName()
      const [a, b] = [await start(), await start()]
      const watcher = track(await connectAs(b.url, { role: 'service', sub: `watch-${fleet}` }))
      await watcher.subscribeAsync(`fleet/${fleet}/drones/+/status`, { qos: 1 })
      const statuses = collect(watcher)

      const claims = { role: 'drone', sub: 'd1', fleet } as const
      const drone = await movingDrone([a, b], claims)
      const received = new Set<number>()
      drone.on('message', (_topic, payload) => received.add(Number(payload.toString())))
      // A second client on A, so the drone is not the first one closed.
      track(await connectAs(a.url, { role: 'viewer', sub: `v-${fleet}`, fleet }))
      const drainMetric = () =>
        a.broker.metrics.value(a.broker.metrics.disconnects, { reason: 'drain' })

      const ops = track(await connectAs(b.url, { role: 'service', sub: `ops-${fleet}` }))
      const stream = streamCommands(ops, `fleet/${fleet}/drones/d1/commands`)
      // B knows the drone's subscription (Redis has told it) once a command gets through.
      await vi.waitFor(() => expect(received.size).toBeGreaterThan(0), { timeout: 10_000 })
      expect(await storedWillsOf(a)).toHaveLength(1)

      let reconnected = false
      drone.once('connect', () => (reconnected = true))
      const drained = a.listening.drain(2_000)
      // First: A takes itself out of rotation, before any client is closed (the first
      // of two is due 1 s into the window).
      const health = await fetch(`http://127.0.0.1:${a.listening.metrics!.port}/health`)
      expect(health.status).toBe(503)
      expect(await health.json()).toEqual({ status: 'draining' })
      expect(await drainMetric()).toBe(0)
      expect(drone.connected).toBe(true)
      // New connections are refused at once.
      await expect(
        connectAs(a.url, { role: 'viewer', sub: `late-${fleet}`, fleet }),
      ).rejects.toThrow(/ECONNREFUSED/)

      await drained
      expect(await drainMetric()).toBe(2)
      await vi.waitFor(() => expect(reconnected).toBe(true), { timeout: 5_000 })
      expect(b.broker.aedes.connectedClients).toBe(3) // watcher, ops and the drone
      // Some commands are published while it is on B too, then the stream stops.
      const onB = received.size
      await vi.waitFor(() => expect(received.size).toBeGreaterThan(onB + 20), { timeout: 10_000 })
      const acked = await stream.stop()
      await vi.waitFor(() => expect(acked.filter((i) => !received.has(i))).toEqual([]), {
        timeout: 10_000,
      })
      expect(statuses.map((s) => s.payload)).not.toContain(OFFLINE)
      // Nor is a copy of its will left in Redis for B to publish once A's heartbeat stops.
      expect(await storedWillsOf(a)).toEqual([])
    },
  )

  it(
    'survives a rolling restart (drain A, restart A, drain B): no will, no QoS 1 message lost',
    { timeout: 40_000 },
    async () => {
      const fleet = fleetName()
      // The publisher and the watcher sit on a third broker that stays up.
      const [a, b, c] = [await start(), await start(), await start()]
      const watcher = track(await connectAs(c.url, { role: 'service', sub: `watch-${fleet}` }))
      await watcher.subscribeAsync(`fleet/${fleet}/drones/+/status`, { qos: 1 })
      const statuses = collect(watcher)
      const drone = await movingDrone([a, b], { role: 'drone', sub: 'd1', fleet })
      const received = new Set<number>()
      drone.on('message', (_topic, payload) => received.add(Number(payload.toString())))
      const ops = track(await connectAs(c.url, { role: 'service', sub: `ops-${fleet}` }))
      const stream = streamCommands(ops, `fleet/${fleet}/drones/d1/commands`)
      await vi.waitFor(() => expect(received.size).toBeGreaterThan(0), { timeout: 10_000 })
      const movedTo = async (tb: TestBroker) => {
        await vi.waitFor(() => expect(tb.broker.aedes.connectedClients).toBe(1), { timeout: 5_000 })
        const before = received.size
        await vi.waitFor(() => expect(received.size).toBeGreaterThan(before + 20), {
          timeout: 10_000,
        })
      }

      await a.listening.drain(500)
      await movedTo(b)
      // A again, on the port the drone knows (its `servers` list goes back to A next).
      const again = await startTestBroker(
        { redisUrl: TEST_REDIS_URL, cluster },
        { mqttPort: a.listening.mqtt.port },
      )
      brokers.push(again)
      await b.listening.drain(500)
      await movedTo(again)

      const acked = await stream.stop()
      await vi.waitFor(() => expect(acked.filter((i) => !received.has(i))).toEqual([]), {
        timeout: 10_000,
      })
      expect(statuses.map((s) => s.payload)).not.toContain(OFFLINE)
      expect([...(await storedWillsOf(a)), ...(await storedWillsOf(b))]).toEqual([])
    },
  )

  it('closes its clients evenly over the window, the last at its end', async () => {
    const fleet = fleetName()
    const [a, b] = [await start(), await start()]
    const closedAt: number[] = []
    for (let i = 0; i < 4; i++) {
      const c = track(await connectAs(a.url, { role: 'drone', sub: `d${i}`, fleet }))
      c.once('close', () => closedAt.push(Date.now()))
    }
    const startedAt = Date.now()
    await a.listening.drain(1_200)
    const took = Date.now() - startedAt
    await vi.waitFor(() => expect(closedAt).toHaveLength(4))
    const offsets = closedAt.map((t) => t - startedAt).sort((x, y) => x - y)
    // Timers never fire early: each at (i + 1) / 4 of the window, or later.
    offsets.forEach((offset, i) => expect(offset).toBeGreaterThanOrEqual(((i + 1) * 1_200) / 4 - 5))
    expect(took).toBeGreaterThanOrEqual(1_200 - 5)
    expect(took).toBeLessThan(1_200 + 2_000)
    expect(b.broker.aedes.connectedClients).toBe(0)
  })

  it('with a window of 0 closes every client at once, still without its will', async () => {
    const fleet = fleetName()
    const [a, b] = [await start(), await start()]
    const drone = await movingDrone([a, b], { role: 'drone', sub: 'd1', fleet })
    let reconnected = false
    drone.once('connect', () => (reconnected = true))
    const startedAt = Date.now()
    await a.listening.drain(0)
    expect(Date.now() - startedAt).toBeLessThan(1_000)
    expect(await a.broker.metrics.value(a.broker.metrics.disconnects, { reason: 'drain' })).toBe(1)
    // A will is retained: had A published it, it would be in Redis once A has closed
    // (the retained store is written first, on the connection A closes last).
    await a.close()
    const redis = new Redis(TEST_REDIS_URL)
    try {
      expect(await redis.hexists(`${cluster}:retained`, `fleet/${fleet}/drones/d1/status`)).toBe(0)
    } finally {
      redis.disconnect()
    }
    expect(await storedWillsOf(a)).toEqual([])
    await vi.waitFor(() => expect(reconnected).toBe(true))
    expect(b.broker.aedes.connectedClients).toBe(1)
  })
})
