// The senders of the wire bench: telemetry as a drone of the simulator sends it, over
// MQTT (mqtt.js with the simulator's connect options) and over HTTP/1.1 POSTs, `intervalMs`
// apart; and an empty session of each (open, set up, close), whose
// cost is what every new connection pays.
import { once } from 'node:events'
import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { ClientRequest, IncomingMessage } from 'node:http'
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { connect as tlsConnect } from 'node:tls'
import mqtt from 'mqtt'
import type { IClientOptions } from 'mqtt'
import { buildTopic, droneWillPayload } from '@skyline/schemas'
import type { Telemetry } from '@skyline/schemas'

export const FLEET = 'f1'
const topic = (droneId: string, channel: 'telemetry' | 'status') =>
  buildTopic({ kind: 'drone', fleetId: FLEET, droneId, channel })

/** A drone and its device token. Each MQTT scenario has its own, or they would take over one session. */
export interface Device {
  droneId: string
  token: string
}

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

export interface Endpoint {
  port: number
  /** The server's certificate (self-signed) when the transport is TLS. */
  ca?: Buffer
}

/**
 * Calls `send(i)` for i < n, `gapMs` apart: a gap, not a schedule, so that a late
 * message (a busy machine) never sends the next one right behind it.
 */
async function paced(
  n: number,
  gapMs: number,
  signal: AbortSignal,
  send: (i: number) => Promise<void>,
): Promise<void> {
  for (let i = 0; i < n; i++) {
    signal.throwIfAborted()
    await send(i)
    if (i < n - 1) await delay(gapMs, undefined, { signal })
  }
}

/** The simulator's connect options (drone-agent.ts, connection.ts, drone-sim's defaults). */
function mqttOptions(who: Device, to: Endpoint): IClientOptions {
  return {
    clientId: `${FLEET}.${who.droneId}`,
    username: who.droneId,
    password: who.token,
    clean: false,
    keepalive: 10, // s, the simulator's default
    will: {
      topic: topic(who.droneId, 'status'),
      payload: Buffer.from(JSON.stringify(droneWillPayload(Date.now()))),
      qos: 1,
      retain: true,
    },
    reconnectPeriod: 0,
    queueQoSZero: false,
    ...(to.ca && { ca: to.ca }),
  }
}

const mqttUrl = (to: Endpoint) => `${to.ca ? 'mqtts' : 'mqtt'}://127.0.0.1:${to.port}`

/** One MQTT connection: CONNECT, `n` PUBLISHes (each acknowledged at QoS 1), DISCONNECT. */
export async function sendMqtt(
  to: Endpoint,
  who: Device,
  qos: 0 | 1,
  n: number,
  intervalMs: number,
  signal: AbortSignal,
): Promise<number> {
  const client = await mqtt.connectAsync(mqttUrl(to), mqttOptions(who, to))
  try {
    const telemetry = topic(who.droneId, 'telemetry')
    await paced(n, intervalMs, signal, async (i) => {
      await client.publishAsync(telemetry, json(i), { qos })
    })
  } finally {
    await client.endAsync()
  }
  return 1
}

/** Opens an MQTT session (CONNECT/CONNACK) and ends it (DISCONNECT) without a message. */
export async function emptyMqttSession(to: Endpoint, who: Device): Promise<void> {
  const client = await mqtt.connectAsync(mqttUrl(to), mqttOptions(who, to))
  await client.endAsync()
}

export interface HttpOptions {
  keepAlive: boolean
  /** TLS sessions kept for resumption (Node's https default: 100); 0: a full handshake each time. */
  tlsSessions?: number
}

/**
 * POSTs `n` messages one after another, the device token as a bearer token; resolves
 * with the number of connections opened. The stand-in for an HTTP ingest (the api has
 * none) answers 204.
 */
export async function sendHttp(
  to: Endpoint,
  who: Device,
  opts: HttpOptions,
  n: number,
  intervalMs: number,
  signal: AbortSignal,
): Promise<number> {
  const agent = to.ca
    ? new HttpsAgent({
        keepAlive: opts.keepAlive,
        maxSockets: 1,
        ca: to.ca,
        maxCachedSessions: opts.tlsSessions ?? 100,
      })
    : new HttpAgent({ keepAlive: opts.keepAlive, maxSockets: 1 })
  const request = to.ca ? httpsRequest : httpRequest
  const sockets = new Set<Socket>()
  const closed: Promise<unknown>[] = []
  try {
    await paced(n, intervalMs, signal, async (i) => {
      const body = json(i)
      const req: ClientRequest = request({
        host: '127.0.0.1',
        port: to.port,
        method: 'POST',
        path: `/api/fleets/${FLEET}/drones/${who.droneId}/telemetry`,
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          authorization: `Bearer ${who.token}`,
          // Node's agent says keep-alive even when it will not reuse the socket.
          ...(!opts.keepAlive && { connection: 'close' }),
        },
      })
      req.on('socket', (socket: Socket) => {
        if (sockets.has(socket)) return
        sockets.add(socket)
        closed.push(once(socket, 'close'))
      })
      req.end(body)
      const [res] = (await once(req, 'response')) as [IncomingMessage]
      res.resume()
      await once(res, 'end')
    })
  } finally {
    agent.destroy()
  }
  await Promise.all(closed)
  return sockets.size
}

/**
 * Opens a TCP connection (with its TLS handshake when `to.ca` is set) and closes it, no
 * request. `session`: a TLS session to resume; resolves with the one the server gave.
 */
export async function emptyHttpSession(
  to: Endpoint,
  session?: Buffer,
): Promise<Buffer | undefined> {
  if (to.ca === undefined) {
    const socket = tcpConnect(to.port, '127.0.0.1')
    await once(socket, 'connect')
    socket.end()
    await once(socket, 'close')
    return undefined
  }
  const socket = tlsConnect({ host: '127.0.0.1', port: to.port, ca: to.ca, session })
  let ticket: Buffer | undefined
  socket.on('session', (s: Buffer) => (ticket = s))
  await once(socket, 'secureConnect')
  socket.resume()
  socket.end()
  await once(socket, 'close')
  return ticket
}
