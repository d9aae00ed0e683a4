import { afterAll, describe, expect, it, vi } from 'vitest'
import mqtt from 'mqtt'
import type { MqttClient } from 'mqtt'
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
import { startHaproxy } from './haproxy.ts'
import type { Haproxy } from './haproxy.ts'

// The cluster profile's load balancer (deploy/haproxy.cfg, run by the real haproxy with
// short check intervals) with two brokers on one Redis: a broker that drains fails
// haproxy's health check and gets no new client, while its own move over.
describe('haproxy in front of a broker that drains', () => {
  const cluster = testClusterName('haproxy')
  const fleet = 'lb'
  const brokers: TestBroker[] = []
  const clients: MqttClient[] = []
  let lb: Haproxy | undefined

  afterAll(async () => {
    await lb?.stop()
    await Promise.all(clients.map((c) => c.endAsync(true)))
    await Promise.all(brokers.map((b) => b.close()))
    await dropClusterKeys(cluster)
  })

  /** Whether the client `clientId` is connected to broker `tb` (aedes keys it under its identity). */
  const isOn = (tb: TestBroker, clientId: string) =>
    Object.keys((tb.broker.aedes as unknown as { clients: object }).clients).some((id) =>
      id.endsWith(`|${clientId}`),
    )

  it('takes the draining broker out of rotation: new clients land on the other', async () => {
    for (let i = 0; i < 2; i++) {
      brokers.push(await startTestBroker({ redisUrl: TEST_REDIS_URL, cluster }, { wsPort: 0 }))
    }
    const [one, two] = brokers as [TestBroker, TestBroker]
    const ports = (tb: TestBroker) => ({
      mqtt: tb.listening.mqtt.port,
      ws: tb.listening.ws!.port,
      health: tb.listening.metrics!.port,
    })
    lb = await startHaproxy({ broker: ports(one), 'broker-2': ports(two) })
    const url = `mqtt://127.0.0.1:${lb.mqttPort}`
    /** Every server of both backends (`ws:` before the WebSocket ones). */
    const servers = async () => ({
      ...(await lb!.servers('brokers_mqtt')),
      ...Object.fromEntries(
        Object.entries(await lb!.servers('brokers_ws')).map(([k, v]) => [`ws:${k}`, v]),
      ),
    })
    const up = { status: 'UP', check: 'L7OK', code: '200' }
    await vi.waitFor(
      async () =>
        expect(await servers()).toEqual({
          broker: up,
          'broker-2': up,
          'ws:broker': up,
          'ws:broker-2': up,
        }),
      { timeout: 5_000 },
    )
    const through = async (claims: DeviceClaims) => {
      const c = await connectAs(url, claims)
      clients.push(c)
      return c
    }

    // leastconn spreads the viewers over both brokers; then a drone with a persistent
    // session and a will, reconnecting through haproxy.
    for (let i = 0; i < 4; i++) await through({ role: 'viewer', sub: `v${i}`, fleet })
    expect([one, two].map((tb) => tb.broker.aedes.connectedClients)).toEqual([2, 2])
    const status = `fleet/${fleet}/drones/d1/status`
    const drone = mqtt.connect(
      url,
      await optionsFor(
        { role: 'drone', sub: 'd1', fleet },
        {
          clean: false,
          reconnectPeriod: 50,
          will: { topic: status, payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
        },
      ),
    )
    clients.push(drone)
    await new Promise((resolve) => drone.once('connect', resolve))
    const [draining, other] = isOn(one, 'd1') ? [one, two] : [two, one]
    const name = draining === one ? 'broker' : 'broker-2'
    const watcher = await connectAs(other.url, { role: 'service', sub: 'watch', fleet })
    clients.push(watcher)
    await watcher.subscribeAsync(`fleet/${fleet}/drones/+/status`, { qos: 1 })
    const seen = collect(watcher)

    // Three clients: the first is closed 1 s into the window, the drone (the last to
    // connect) at its end.
    const drained = draining.listening.drain(3_000)
    // Taken out by its /health answering 503 (L7STS), not by a refused connection.
    const down = { status: 'DOWN', check: 'L7STS', code: '503' }
    await vi.waitFor(
      async () => {
        const now = await servers()
        expect(now[name]).toEqual(down)
        expect(now[`ws:${name}`]).toEqual(down)
      },
      { timeout: 2_000, interval: 50 },
    )
    expect(drone.connected).toBe(true)
    const newcomers = []
    for (let i = 0; i < 4; i++)
      newcomers.push(await through({ role: 'viewer', sub: `n${i}`, fleet }))
    expect(newcomers.map((_, i) => isOn(other, `n${i}`))).toEqual([true, true, true, true])

    await drained
    // The drone came back through haproxy, to the other broker, and no will was sent.
    await vi.waitFor(() => expect(isOn(other, 'd1')).toBe(true))
    expect(draining.broker.aedes.connectedClients).toBe(0)
    expect(seen.map((m) => m.payload)).toEqual([])
  }, 30_000)
})
