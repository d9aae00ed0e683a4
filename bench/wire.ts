// Bytes on the wire per telemetry message, both directions, counted at the client's
// socket (socket.bytesWritten + socket.bytesRead: TCP payload, without IP/TCP headers):
// MQTT at QoS 0, 1 and 2 on one long-lived connection to the bundled broker, against
// HTTP/1.1 POSTs of the same JSON to a plain node:http server, with keep-alive and with
// a new connection per message. And what a denser encoding of the payload would weigh.
import { once } from 'node:events'
import { Agent, createServer, request } from 'node:http'
import type { Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import mqttPacket from 'mqtt-packet'
import type { Packet } from 'mqtt-packet'
import { signDeviceToken } from '@skyline/auth'
import type { Telemetry } from '@skyline/schemas'
import { spawnBroker } from '../apps/broker/test/broker-process.ts'
import { STACK_SECRET } from './stack.ts'
import { connectRaw } from './mqtt-raw.ts'
import { encodedSizes } from './wire-encodings.ts'

export interface WireSettings {
  /** Messages sent per transport; the connection's setup is left out of MQTT's figure. */
  messages: number
}

export const wireSettingsFor = (quick: boolean): WireSettings => ({
  messages: quick ? 200 : 2_000,
})

export interface WireRow {
  transport: string
  bytesPerMsg: number
  /** Client to server, per message. */
  upPerMsg: number
  downPerMsg: number
}

export interface WireResult extends WireSettings {
  rows: WireRow[]
  /** Bytes of one connection's setup (CONNECT + CONNACK) and teardown, not in MQTT's rows. */
  mqttConnectBytes: number
  payloads: { encoding: string; bytes: number }[]
}

const FLEET = 'f1'
const DRONE = 'd1'
const TOPIC = `fleet/${FLEET}/drones/${DRONE}/telemetry`

/** A message as the simulator writes it (apps/drone-sim/src/drone-agent.ts: rounded fields). */
export function sampleTelemetry(seq: number): Telemetry {
  return {
    v: 1,
    ts: Date.now(),
    seq,
    lat: 47.376887,
    lon: 8.541694,
    altM: 512.4,
    speedMps: 12.5,
    headingDeg: 271.3,
    batteryPct: 87.5,
    state: 'en_route',
  }
}

const json = (seq: number) => Buffer.from(JSON.stringify(sampleTelemetry(seq)))
const socketBytes = (s: Socket) => ({ up: s.bytesWritten, down: s.bytesRead })

export async function benchWire(
  s: WireSettings,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<WireResult> {
  const token = await signDeviceToken(STACK_SECRET, { role: 'drone', sub: DRONE, fleet: FLEET })
  const rows: WireRow[] = []
  let mqttConnectBytes = 0
  const broker = await spawnBroker({ DEVICE_TOKEN_SECRET: STACK_SECRET, MQTT_RATE_LIMIT: '0' })
  try {
    for (const qos of [0, 1, 2] as const) {
      signal.throwIfAborted()
      const r = await mqttBytes(broker.ports.mqtt, token, qos, s.messages)
      mqttConnectBytes = r.connectBytes
      rows.push({ transport: `MQTT 3.1.1 QoS ${qos}, one connection`, ...r.perMsg })
      log(`wire bench: MQTT QoS ${qos}: ${r.perMsg.bytesPerMsg.toFixed(1)} B/msg`)
    }
  } finally {
    await broker.stop()
  }
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      res.statusCode = 204
      res.end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  try {
    const variants = [
      { transport: 'HTTP/1.1 POST, keep-alive, bearer token', keepAlive: true, auth: true },
      { transport: 'HTTP/1.1 POST, keep-alive, no auth header', keepAlive: true, auth: false },
      {
        transport: 'HTTP/1.1 POST, new connection each, bearer token',
        keepAlive: false,
        auth: true,
      },
    ]
    for (const v of variants) {
      signal.throwIfAborted()
      const perMsg = await httpBytes(port, v.keepAlive, v.auth ? token : undefined, s.messages)
      rows.push({ transport: v.transport, ...perMsg })
      log(`wire bench: ${v.transport}: ${perMsg.bytesPerMsg.toFixed(1)} B/msg`)
    }
  } finally {
    server.closeAllConnections()
    server.close()
  }
  return { ...s, rows, mqttConnectBytes, payloads: encodedSizes(sampleTelemetry(123_456)) }
}

/** Sends `n` messages one after another (each waits for its handshake to finish). */
async function mqttBytes(port: number, token: string, qos: 0 | 1 | 2, n: number) {
  const conn = await connectRaw(port, { username: DRONE, password: token, clientId: DRONE })
  const { socket, parser } = conn
  const start = socketBytes(socket)
  // Every packet id's handshake ends with PUBACK (QoS 1) or PUBCOMP (QoS 2); PUBREC asks
  // for PUBREL [MQTT-4.3.3].
  let done: (() => void) | undefined
  parser.on('packet', (p: Packet) => {
    if (p.cmd === 'pubrec')
      socket.write(mqttPacket.generate({ cmd: 'pubrel', messageId: p.messageId }))
    else if (p.cmd === 'puback' || p.cmd === 'pubcomp') done?.()
  })
  for (let i = 0; i < n; i++) {
    const packet = mqttPacket.generate({
      cmd: 'publish',
      topic: TOPIC,
      payload: json(i),
      qos,
      messageId: qos > 0 ? (i % 0xffff) + 1 : undefined,
      retain: false,
      dup: false,
    })
    if (qos === 0) {
      if (!socket.write(packet)) await once(socket, 'drain')
      continue
    }
    const acked = new Promise<void>((resolve) => (done = resolve))
    socket.write(packet)
    await acked
  }
  // PINGREQ/PINGRESP: once it answers, every QoS 0 PUBLISH before it has been read.
  const ping = once(parser, 'packet')
  socket.write(mqttPacket.generate({ cmd: 'pingreq' }))
  await ping
  const end = socketBytes(socket)
  const up = end.up - start.up - 2
  const down = end.down - start.down - 2
  socket.end(mqttPacket.generate({ cmd: 'disconnect' }))
  await once(socket, 'close')
  const total = socketBytes(socket)
  return {
    perMsg: { bytesPerMsg: (up + down) / n, upPerMsg: up / n, downPerMsg: down / n },
    connectBytes: total.up + total.down - (up + down) - 4,
  }
}

/** POSTs `n` messages one after another; counts every socket the agent opened. */
async function httpBytes(port: number, keepAlive: boolean, token: string | undefined, n: number) {
  const agent = new Agent({ keepAlive, maxSockets: 1 })
  const sockets = new Set<Socket>()
  try {
    for (let i = 0; i < n; i++) {
      const body = json(i)
      const req = request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/api/fleets/${FLEET}/drones/${DRONE}/telemetry`,
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          // Node's agent says keep-alive even when it will not reuse the socket.
          ...(!keepAlive && { connection: 'close' }),
          ...(token !== undefined && { authorization: `Bearer ${token}` }),
        },
      })
      req.on('socket', (sock: Socket) => sockets.add(sock))
      req.end(body)
      const [res] = (await once(req, 'response')) as [NodeJS.ReadableStream]
      res.resume()
      await once(res, 'end')
    }
  } finally {
    agent.destroy()
  }
  let up = 0
  let down = 0
  for (const sock of sockets) {
    up += sock.bytesWritten
    down += sock.bytesRead
  }
  return { bytesPerMsg: (up + down) / n, upPerMsg: up / n, downPerMsg: down / n }
}

export function wireTable(r: WireResult): string {
  const base = r.rows.find((x) => x.transport.startsWith('HTTP/1.1 POST, keep-alive, bearer'))
  const f = (x: number) => x.toFixed(1)
  const rows = r.rows.map(
    (x) =>
      `| ${x.transport} | ${f(x.bytesPerMsg)} | ${f(x.upPerMsg)} / ${f(x.downPerMsg)} | ` +
      `${base ? (x.bytesPerMsg / base.bytesPerMsg).toFixed(2) : ''} |`,
  )
  // The same MQTT QoS 0 packet with another payload: the topic and header stay.
  const json = r.payloads.find((p) => p.encoding.startsWith('JSON'))?.bytes ?? NaN
  const qos0 = r.rows.find((x) => x.transport.includes('QoS 0'))?.bytesPerMsg ?? NaN
  const payloadRows = r.payloads.map(
    (p) =>
      `| MQTT QoS 0 with the payload as ${p.encoding} (${p.bytes} B) | ${f(qos0 - json + p.bytes)} | | ` +
      `${base ? ((qos0 - json + p.bytes) / base.bytesPerMsg).toFixed(2) : ''} |`,
  )
  return [
    `Wire: bytes per telemetry message, both directions, counted at the client's socket ` +
      `(TCP payload; ${r.messages} messages each, one after another)`,
    '| transport | bytes/msg | up / down | vs HTTP keep-alive with token |',
    '| --- | --- | --- | --- |',
    ...rows,
    ...payloadRows,
    `MQTT rows leave out the connection's CONNECT/CONNACK/DISCONNECT (${r.mqttConnectBytes} B once, ` +
      `token included); HTTP carries the device token on every request. ` +
      `A new connection's handshake and teardown carry no payload, so they are not counted: ` +
      `about 7 TCP segments (≈ 360 B of IP/TCP headers), and several KB more with TLS. ` +
      `Target: MQTT QoS 0 ≤ 0.4 × HTTP keep-alive.`,
  ].join('\n')
}
