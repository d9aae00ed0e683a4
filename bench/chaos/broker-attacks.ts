// Attacks on the broker by one device or one token (issue 14, items 6, 7, 9), and on
// the live stream's origin check (item 8).
import { connectAsync } from 'mqtt'
import type { MqttClient } from 'mqtt'
import WebSocket from 'ws'
import { signDeviceToken } from '@skyline/auth'
import { RawClient } from '../../apps/broker/test/raw-client.ts'
import { STACK_SECRET } from '../stack.ts'
import { until } from './parts.ts'
import type { Parts } from './parts.ts'
import type { Attack } from './report.ts'

const FLEET = 'chaos'

/** `n` connections of drone d1's one token (client ids d1-0 …); those the broker accepted. */
async function sameToken(parts: Parts, url: string, n: number): Promise<MqttClient[]> {
  const password = await signDeviceToken(STACK_SECRET, { role: 'drone', sub: 'd1', fleet: FLEET })
  const accepted: MqttClient[] = []
  for (let i = 0; i < n; i++) {
    const c = await connectAsync(url, {
      clientId: `d1-${i}`,
      username: 'd1',
      password,
      reconnectPeriod: 0,
    }).catch(() => undefined)
    if (c === undefined) continue
    c.on('error', () => {}) // closed by a takeover: expected here
    parts.defer(() => c.endAsync(true))
    accepted.push(c)
  }
  return accepted
}

export const oneTokenManyConnections: Attack = {
  name: 'token-connections',
  async run(parts) {
    const max = 300
    const broker = await parts.broker({ MQTT_MAX_CONNECTIONS: String(max) })
    const accepted = (await sameToken(parts, broker.url, max)).length
    const other = await parts.client(broker.url, { role: 'drone', sub: 'd2', fleet: FLEET }).then(
      () => 'connected',
      (err: Error) => `refused (${err.message})`,
    )
    const open = await until(async () => {
      const text = await broker.metrics()
      const line = text.split('\n').find((l) => l.startsWith('skyline_broker_connections '))
      return line === undefined ? undefined : Number(line.split(' ')[1])
    }, 2_000)
    return {
      attack: `one drone token opens ${max} connections (MQTT_MAX_CONNECTIONS=${max})`,
      expected: 'the token holds its bound; another drone connects',
      happened: `${accepted} CONNACKed, ${open ?? '?'} connections open at the end; another drone: ${other}`,
      lost: 0,
    }
  },
}

export const oneTokenManyPublishers: Attack = {
  name: 'token-rate',
  async run(parts) {
    const broker = await parts.broker({ MQTT_RATE_LIMIT: '100', MQTT_RATE_BURST: '200' })
    const watcher = await parts.client(broker.url, { role: 'service', sub: 'watch' })
    await watcher.subscribeAsync(`fleet/${FLEET}/#`, { qos: 0 })
    let received = 0
    watcher.on('message', () => received++)
    const clients = await sameToken(parts, broker.url, 10)
    const seconds = 5
    const started = performance.now()
    while (performance.now() - started < seconds * 1000) {
      for (const c of clients)
        if (c.connected)
          for (let k = 0; k < 20; k++) c.publish(`fleet/${FLEET}/drones/d1/telemetry`, 'x')
      await new Promise((r) => setTimeout(r, 10))
    }
    await new Promise((r) => setTimeout(r, 500)) // the last deliveries in flight
    return {
      attack: `one drone token, 10 connections publishing flat out for ${seconds} s (rate 100/s, burst 200)`,
      expected: `about one device's budget: ≤ ${100 * seconds + 200} delivered`,
      happened: `${received.toLocaleString('en-US')} delivered`,
      lost: 0,
    }
  },
}

export const refusedFlood: Attack = {
  name: 'refused-flood',
  async run(parts) {
    const broker = await parts.broker({ MQTT_RATE_LIMIT: '100', MQTT_RATE_BURST: '200' })
    const drone = await parts.client(broker.url, { role: 'drone', sub: 'd1', fleet: FLEET })
    drone.on('error', () => {})
    const closed = new Promise<number>((r) => drone.once('close', () => r(performance.now())))
    const started = performance.now()
    let sent = 0
    const limitS = 20
    while (drone.connected && performance.now() - started < limitS * 1000) {
      // Another drone's topic: refused by the ACL.
      for (let k = 0; k < 200; k++) drone.publish(`fleet/${FLEET}/drones/d2/telemetry`, 'x')
      sent += 200
      await new Promise((r) => setImmediate(r))
    }
    const end = drone.connected ? undefined : await closed
    return {
      attack: 'a drone floods publishes the ACL refuses (another drone’s topic)',
      expected: 'counted against its rate budget; disconnected after the flood window (10 s)',
      happened:
        end === undefined
          ? `still connected after ${limitS} s, ${sent.toLocaleString('en-US')} sent`
          : `disconnected after ${((end - started) / 1000).toFixed(1)} s, ${sent.toLocaleString('en-US')} sent`,
      lost: 0,
    }
  },
}

/** A PUBLISH (QoS 0) whose topic is these raw bytes. */
function publishBytes(topic: Buffer): Buffer {
  const payload = Buffer.from('x')
  const length = 2 + topic.length + payload.length
  return Buffer.concat([Buffer.from([0x30, length, 0, topic.length]), topic, payload])
}

export const protocolViolations: Attack = {
  name: 'protocol',
  async run(parts) {
    const broker = await parts.broker()
    const password = Buffer.from(
      await signDeviceToken(STACK_SECRET, { role: 'drone', sub: 'd1', fleet: FLEET }),
    )
    const cases: [string, Buffer][] = [
      ['invalid UTF-8 topic', publishBytes(Buffer.from([0x66, 0x2f, 0xc3, 0x28]))],
      ['NUL in a topic', publishBytes(Buffer.from(`fleet/${FLEET}/drones/d1/\u0000`))],
      ['empty UNSUBSCRIBE', Buffer.from([0xa2, 0x02, 0x00, 0x01])],
    ]
    const results: string[] = []
    for (const [name, bytes] of cases) {
      const raw = await RawClient.open(broker.ports.mqtt)
      parts.defer(() => void raw.socket.destroy())
      raw.sendConnect(`d1-${results.length}`, 'd1', password)
      await raw.next()
      raw.socket.write(bytes)
      const closedIn = await Promise.race([
        raw.closed.then(() => true),
        new Promise<false>((r) => setTimeout(r, 2_000, false)),
      ])
      results.push(`${name}: ${closedIn ? 'closed' : 'stays open'}`)
    }
    return {
      attack: 'MQTT-1.5.3-1/2 and MQTT-3.10.3-2 violations on a signed-in connection',
      expected: 'the connection closed',
      happened: results.join('; '),
      lost: 0,
    }
  },
}

export const rebindingOrigin: Attack = {
  name: 'origin-rebinding',
  async run(parts) {
    const broker = await parts.broker()
    const { url } = await parts.database()
    const apiUrl = await parts.api({ MQTT_URL: broker.url, DATABASE_URL: url })
    const host = `evil.example:${new URL(apiUrl).port}`
    const ws = new WebSocket(`${apiUrl.replace('http', 'ws')}/api/live`, {
      headers: { Origin: `http://${host}`, Host: host },
    })
    const outcome = await new Promise<string>((resolve) => {
      ws.once('open', () => resolve('accepted'))
      ws.once('unexpected-response', (_req, res) => resolve(`refused (${res.statusCode})`))
      ws.once('error', (err) => resolve(`refused (${err.message})`))
    })
    ws.terminate()
    return {
      attack: 'the live stream from a DNS-rebinding page (Origin and Host both evil.example)',
      expected: 'refused: not a configured public origin',
      happened: outcome,
      lost: 0,
    }
  },
}
