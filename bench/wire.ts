// Every byte a telemetry message costs on the wire (issue 19, item 4): a tshark capture
// on loopback counts IP and TCP headers, each connection's handshake and teardown and
// TLS, for MQTT over TCP and TLS on one long-lived connection against HTTP/1.1 POSTs
// with keep-alive and with a new connection per request. Packets per message stand in
// for a radio's energy. The scenarios run side by side, each against its own server
// port, so that the capture tells them apart by port.
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { signDeviceToken } from '@skyline/auth'
import { spawnBroker } from '../apps/broker/test/broker-process.ts'
import type { BrokerProcess } from '../apps/broker/test/broker-process.ts'
import { LOOPBACK_LINK_HEADER_BYTES, connections, startCapture, totals } from './capture.ts'
import type { TcpConnection, Totals } from './capture.ts'
import { STACK_SECRET } from './stack.ts'
import {
  FLEET,
  emptyHttpSession,
  emptyMqttSession,
  sampleTelemetry,
  sendHttp,
  sendMqtt,
} from './wire-clients.ts'
import type { Device, Endpoint } from './wire-clients.ts'
import { encodedSizes } from './wire-encodings.ts'

export interface WireSettings {
  /** Telemetry messages per transport. */
  messages: number
  /**
   * Time between two messages of a transport, ms. Longer than Linux's delayed-ACK
   * timeout (40 ms), so each message is acknowledged on its own as at the simulator's
   * 1 Hz; sent back to back, several would share an ACK.
   */
  intervalMs: number
  /** Empty sessions (open, set up, close) per transport; the median is a new connection's cost. */
  emptySessions: number
}

export const wireSettingsFor = (quick: boolean): WireSettings => ({
  messages: quick ? 200 : 1_000,
  intervalMs: 60,
  emptySessions: 5,
})

export interface WireRow {
  transport: string
  /** Connections opened to send the messages. */
  connections: number
  /** Every segment of those connections, handshakes and teardowns included. */
  total: Totals
  bytesPerMsg: number
  packetsPerMsg: number
  /** TCP payload per message: what a socket-level count sees. */
  payloadBytesPerMsg: number
  /** A new connection's cost: the median empty session (open, set up, close). */
  newConnection: Totals
}

export interface WireResult extends WireSettings {
  rows: WireRow[]
  /** Subtracted from each captured frame: the fake Ethernet header of Linux's `lo`. */
  linkHeaderBytes: number
  payloads: { encoding: string; bytes: number }[]
  /** The JSON payload as sent, bytes. */
  jsonBytes: number
}

interface Scenario {
  transport: string
  to: Endpoint
  /** Sends the messages; resolves with the connections it opened. */
  send: () => Promise<number>
  /** Opens and closes one empty session. */
  empty: () => Promise<void>
  /** Empty sessions left out at the start (the first TLS session, when resuming). */
  warmSessions?: number
}

/** A self-signed certificate for 127.0.0.1, made by the system openssl (as the broker's tests do). */
function selfSigned(dir: string): { cert: Buffer; key: Buffer; certFile: string; keyFile: string } {
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  )
  return { cert: readFileSync(certFile), key: readFileSync(keyFile), certFile, keyFile }
}

/** The stand-in for an HTTP ingest (the api has none): reads the body, answers 204. */
function ingest(req: IncomingMessage, res: ServerResponse): void {
  req.resume()
  req.on('end', () => res.writeHead(204).end())
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

export async function benchWire(
  s: WireSettings,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<WireResult> {
  const dir = mkdtempSync(join(tmpdir(), 'skyline-wire-tls-'))
  const brokers: BrokerProcess[] = []
  const servers: Server[] = []
  try {
    const tls = selfSigned(dir)
    const device = async (droneId: string): Promise<Device> => ({
      droneId,
      token: await signDeviceToken(STACK_SECRET, { role: 'drone', sub: droneId, fleet: FLEET }),
    })
    // One broker per QoS, each with a TCP and a TLS listener: four ports, four scenarios.
    for (let i = 0; i < 2; i++)
      brokers.push(
        await spawnBroker({
          DEVICE_TOKEN_SECRET: STACK_SECRET,
          MQTT_RATE_LIMIT: '0',
          MQTTS_PORT: '0',
          TLS_CERT: tls.certFile,
          TLS_KEY: tls.keyFile,
        }),
      )
    const httpPort = async (secure: boolean) => {
      const server = secure
        ? createHttpsServer({ cert: tls.cert, key: tls.key }, ingest)
        : createHttpServer(ingest)
      servers.push(server)
      return { port: await listen(server), ...(secure && { ca: tls.cert }) }
    }
    const { messages: n, intervalMs } = s
    const scenarios: Scenario[] = []
    for (const [i, qos] of [0, 1].entries()) {
      const broker = brokers[i]!
      for (const secure of [false, true]) {
        const to: Endpoint = secure
          ? { port: broker.ports.mqtts!, ca: tls.cert }
          : { port: broker.ports.mqtt }
        const who = await device(`d${qos}${secure ? 's' : 't'}`)
        scenarios.push({
          transport: `MQTT 3.1.1 QoS ${qos}${secure ? ' over TLS 1.3' : ''}, one connection`,
          to,
          send: () => sendMqtt(to, who, qos as 0 | 1, n, intervalMs, signal),
          empty: () => emptyMqttSession(to, who),
        })
      }
    }
    const http = await device('d1')
    const httpScenario = (
      transport: string,
      to: Endpoint,
      keepAlive: boolean,
      tlsSessions?: number,
    ): Scenario => {
      let session: Buffer | undefined
      return {
        transport,
        to,
        send: () => sendHttp(to, http, { keepAlive, tlsSessions }, n, intervalMs, signal),
        empty: async () => {
          const next = await emptyHttpSession(to, tlsSessions === 0 ? undefined : session)
          session = next ?? session
        },
        warmSessions: to.ca !== undefined && tlsSessions !== 0 ? 1 : 0,
      }
    }
    scenarios.push(
      httpScenario('HTTP/1.1 POST, keep-alive', await httpPort(false), true),
      httpScenario('HTTP/1.1 POST, new connection each', await httpPort(false), false),
      // Its one connection makes a full handshake, as MQTT over TLS's does (mqtt.js keeps no
      // TLS session to resume).
      httpScenario('HTTPS (TLS 1.3) POST, keep-alive', await httpPort(true), true, 0),
      httpScenario(
        'HTTPS (TLS 1.3) POST, new connection each, full handshake',
        await httpPort(true),
        false,
        0,
      ),
      httpScenario(
        'HTTPS (TLS 1.3) POST, new connection each, session resumed',
        await httpPort(true),
        false,
      ),
    )

    const capture = await startCapture(scenarios.map((x) => x.to.port))
    let opened: number[]
    try {
      log(`wire bench: capturing; ${scenarios.length} transports side by side, ${n} messages each`)
      opened = await Promise.all(scenarios.map((x) => x.send()))
      for (const x of scenarios)
        for (let i = 0; i < s.emptySessions + (x.warmSessions ?? 0); i++) await x.empty()
    } catch (err) {
      capture.abort()
      throw err
    }
    const captured = connections(await capture.stop())
    const rows = scenarios.map((x, i) => {
      const row = wireRow(x, opened[i]!, captured, n)
      log(
        `wire bench: ${x.transport}: ${row.bytesPerMsg.toFixed(1)} B/msg, ` +
          `${row.packetsPerMsg.toFixed(2)} packets/msg; new connection ` +
          `${row.newConnection.bytes} B, ${row.newConnection.packets} packets`,
      )
      return row
    })
    const sample = sampleTelemetry(123)
    return {
      ...s,
      rows,
      linkHeaderBytes: LOOPBACK_LINK_HEADER_BYTES,
      payloads: encodedSizes(sample),
      jsonBytes: Buffer.byteLength(JSON.stringify(sample)),
    }
  } finally {
    for (const server of servers) {
      server.closeAllConnections()
      server.close()
    }
    await Promise.all(brokers.map((b) => b.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * The scenario's connections, in the order they opened: the first `opened` carried the
 * messages, then came the warm-up and the empty sessions.
 */
export function wireRow(
  x: Pick<Scenario, 'transport' | 'to' | 'warmSessions'>,
  opened: number,
  captured: TcpConnection[],
  messages: number,
): WireRow {
  const mine = captured.filter((c) => c.serverPort === x.to.port)
  const carrying = mine.slice(0, opened)
  const empty = mine.slice(opened + (x.warmSessions ?? 0)).map((c) => totals(c.segments))
  if (carrying.length < opened || empty.length === 0)
    throw new Error(
      `wire bench: ${x.transport}: ${mine.length} connections captured, expected ` +
        `${opened} and the empty sessions`,
    )
  const total = totals(carrying.flatMap((c) => c.segments))
  return {
    transport: x.transport,
    connections: opened,
    total,
    bytesPerMsg: total.bytes / messages,
    packetsPerMsg: total.packets / messages,
    payloadBytesPerMsg: total.payloadBytes / messages,
    newConnection: medianTotals(empty),
  }
}

/** The empty session of median size (one that happened, not a mix of several). */
function medianTotals(xs: Totals[]): Totals {
  const sorted = [...xs].sort((a, b) => a.bytes - b.bytes || a.packets - b.packets)
  return sorted[(sorted.length - 1) >> 1]!
}

export function wireTable(r: WireResult): string {
  const base = r.rows.find((x) => x.transport === 'HTTP/1.1 POST, keep-alive')
  const f1 = (x: number) => x.toFixed(1)
  const vs = (x: number) => (base ? (x / base.bytesPerMsg).toFixed(2) : '')
  const rows = r.rows.map(
    (x) =>
      `| ${x.transport} | ${f1(x.bytesPerMsg)} | ${x.packetsPerMsg.toFixed(2)} | ` +
      `${f1(x.payloadBytesPerMsg)} | ${x.newConnection.bytes} / ${x.newConnection.packets} | ` +
      `${vs(x.bytesPerMsg)} |`,
  )
  // The same MQTT QoS 0 packet with another payload: topic, headers and ACK stay.
  const qos0 = r.rows.find((x) => x.transport.startsWith('MQTT 3.1.1 QoS 0,'))?.bytesPerMsg ?? NaN
  const payloadRows = r.payloads.map(
    (p) =>
      `| MQTT QoS 0 with the payload as ${p.encoding} (${p.bytes} B) | ` +
      `${f1(qos0 - r.jsonBytes + p.bytes)} | | | | ${vs(qos0 - r.jsonBytes + p.bytes)} |`,
  )
  const mtu = r.rows
    .filter((x) => x.newConnection.packetsAtMtu1500 !== x.newConnection.packets)
    .map((x) => `${x.transport}: ${x.newConnection.packetsAtMtu1500}`)
  return [
    `Wire: every byte on the wire per telemetry message, both directions, from a tshark capture ` +
      `on loopback (IP bytes: IP + TCP headers + payload, each frame less the ` +
      `${r.linkHeaderBytes}-byte fake Ethernet header of Linux's lo; ${r.messages} messages per ` +
      `transport, ${r.intervalMs} ms apart, connections' handshakes and teardowns included)`,
    '| transport | bytes/msg | packets/msg | TCP payload B/msg | a new connection: bytes / packets | vs HTTP keep-alive |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    ...payloadRows,
    `"A new connection": the median of ${r.emptySessions} sessions opened and closed with no ` +
      `message (TCP handshake and FIN teardown; TLS; MQTT CONNECT/CONNACK/DISCONNECT). ` +
      `Long-lived rows include theirs once, amortised over ${r.messages} messages. ` +
      (mtu.length > 0
        ? `Loopback's MTU (65,536) carries a TLS flight in one segment; at an MTU of 1,500 a ` +
          `new connection would take ${mtu.join('; ')} packets.`
        : `Every segment fits an MTU of 1,500: loopback's packet counts hold on Ethernet.`),
  ].join('\n')
}
