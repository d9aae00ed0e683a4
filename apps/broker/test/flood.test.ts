import { connect as tcpConnect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import { signDeviceToken } from '@skyline/auth'
import { spawnBroker, sample } from './broker-process.ts'
import type { BrokerProcess } from './broker-process.ts'
import { flood } from './flood-load.ts'
import { SECRET, connectAs, nextMessage } from './helpers.ts'

// aedes with its defaults deadlocks behind a subscriber that stops reading and then
// dies with "Maximum call stack size exceeded" (reproduced with aedes 1.2: 100 QoS 0
// publishers, one frozen subscriber). The bundled broker must stay up, keep serving
// a healthy subscriber, keep its memory bounded and count what it dropped.
const FLOOD_MS = 30_000
const PUBLISHERS = 100
const RSS_LIMIT_BYTES = 512 * 1024 * 1024

describe('a QoS 0 flood from 100 publishers with a subscriber that stops reading', () => {
  let broker: BrokerProcess
  let healthy: MqttClient

  beforeAll(async () => {
    // No rate limit: the point is the routing path, not the limiter in front of it.
    broker = await spawnBroker({ DEVICE_TOKEN_SECRET: SECRET, MQTT_RATE_LIMIT: '0' })
  })
  afterAll(async () => {
    await healthy?.endAsync(true)
    await broker?.stop()
  })

  it(
    'stays up, bounded in memory, delivering to healthy subscribers and counting drops',
    { timeout: FLOOD_MS + 30_000 },
    async () => {
      const url = `mqtt://127.0.0.1:${broker.ports.mqtt}`
      healthy = await connectAs(url, { role: 'service', sub: 'healthy' })
      await healthy.subscribeAsync('fleet/+/drones/+/telemetry', { qos: 0 })
      let healthyReceived = 0
      healthy.on('message', () => healthyReceived++)

      // The frozen subscriber: subscribes to everything, then never reads again.
      const frozen = tcpConnect({ host: '127.0.0.1', port: broker.ports.mqtt })
      await new Promise((resolve) => frozen.once('connect', resolve))
      const password = Buffer.from(
        await signDeviceToken(SECRET, { role: 'service', sub: 'frozen' }),
      )
      frozen.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: true,
          keepalive: 0,
          clientId: 'frozen',
          username: 'frozen',
          password,
        }),
      )
      frozen.write(
        mqttPacket.generate({
          cmd: 'subscribe',
          messageId: 1,
          subscriptions: [{ topic: 'fleet/#', qos: 0 }],
        }),
      )
      await new Promise((resolve) => frozen.once('data', resolve)) // CONNACK
      frozen.pause()
      frozen.on('error', () => {})

      let peakRss = broker.rssBytes()
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, broker.rssBytes())), 250)
      const tokens = await Promise.all(
        Array.from({ length: PUBLISHERS }, (_, i) =>
          signDeviceToken(SECRET, { role: 'drone', sub: `d${i}`, fleet: 'f1' }),
        ),
      )
      const result = await flood({
        port: broker.ports.mqtt,
        publishers: PUBLISHERS,
        durationMs: FLOOD_MS,
        credentials: (i) => ({ username: `d${i}`, password: Buffer.from(tokens[i]!) }),
        topic: (i) => `fleet/f1/drones/d${i}/telemetry`,
      })
      clearInterval(sampler)
      frozen.destroy()

      expect(broker.child.exitCode).toBeNull()
      expect(result.disconnected).toBe(0)
      expect(peakRss).toBeLessThan(RSS_LIMIT_BYTES)
      // The healthy subscriber kept receiving: nothing deadlocked behind the frozen one.
      expect(healthyReceived).toBeGreaterThan(10_000)

      // Still serving: a fresh client's message goes round.
      const probe = nextMessage(healthy, (t) => t.endsWith('/probe/telemetry'))
      const drone = await connectAs(url, { role: 'drone', sub: 'probe', fleet: 'f1' })
      await drone.publishAsync('fleet/f1/drones/probe/telemetry', 'after the flood', { qos: 1 })
      expect((await probe).payload).toBe('after the flood')
      await drone.endAsync()

      const metrics = await broker.metrics()
      const dropped =
        sample(metrics, 'skyline_broker_dropped_total', 'reason="slow_subscriber"') +
        sample(metrics, 'skyline_broker_dropped_total', 'reason="overload"')
      expect(dropped).toBeGreaterThan(0)
      console.info(
        `flood: ${result.sent} sent in ${FLOOD_MS / 1000} s, healthy subscriber got ${healthyReceived}, ` +
          `${dropped} dropped, peak broker RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`,
      )
    },
  )
})
