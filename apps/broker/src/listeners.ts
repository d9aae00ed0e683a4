import { createServer as createHttpServer } from 'node:http'
import type { Server as HttpServer } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import type { AddressInfo, Server as NetServer } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { SkylineBroker } from './broker.ts'

/** A port that is taken. The message names the variable that moves it. */
export class PortInUseError extends Error {
  readonly code = 'port_in_use'
  constructor(
    readonly port: number,
    readonly variable: string,
  ) {
    super(`port ${port} is already in use: set ${variable} to a free port`)
  }
}

export interface ListenOptions {
  host: string
  /** MQTT over TCP; 0 picks a free port. */
  mqttPort: number
  /** MQTT over WebSocket; undefined: no WebSocket listener. */
  wsPort?: number
  /** MQTT over TLS, with PEM certificate and key. */
  tls?: { port: number; cert: string | Buffer; key: string | Buffer }
  /** HTTP `/metrics` (Prometheus) and `/health`; undefined: none. */
  metricsPort?: number
  /** Largest WebSocket frame accepted, bytes: MQTT_MAX_PACKET_BYTES plus headers. Default 65,536 + 16. */
  maxWsPayloadBytes?: number
  /** Sockets accepted at once per listener, CONNECT or not; beyond, new ones are closed. */
  maxSockets?: number
  /** Told about listener errors after start-up (they do not stop the broker). */
  onError?: (err: Error, variable: string) => void
}

export interface Listening {
  mqtt: AddressInfo
  ws?: AddressInfo
  tls?: AddressInfo
  metrics?: AddressInfo
  /** Stops accepting, disconnects every client through the broker, then closes the sockets. */
  close(): Promise<void>
  /**
   * Leaves the cluster gracefully (issue 17, item 4): `/health` answers 503 at once,
   * the MQTT listeners stop accepting, the clients are closed over `windowMs` without
   * their wills (they reconnect to another broker), then close(). The metrics
   * listener serves until close().
   */
  drain(windowMs: number): Promise<void>
}

/** Opens the broker's listeners; on any failure closes the ones already open. */
export async function startListeners(
  broker: SkylineBroker,
  opts: ListenOptions,
): Promise<Listening> {
  const servers: (NetServer | HttpServer)[] = []
  /** The listeners that take MQTT connections (all but metrics). */
  const mqttServers: NetServer[] = []
  const wss: WebSocketServer[] = []
  const open = async <S extends NetServer | HttpServer>(
    server: S,
    port: number,
    variable: string,
  ) => {
    servers.push(server)
    if (opts.maxSockets !== undefined) server.maxConnections = opts.maxSockets
    const address = await listen(server, port, opts.host, variable)
    // Accept errors (EMFILE when out of file descriptors) must not end the process.
    server.on('error', (err) => opts.onError?.(err, variable))
    return address
  }

  try {
    const tcp = createTcpServer((socket) => broker.handle(socket))
    mqttServers.push(tcp)
    const mqtt = await open(tcp, opts.mqttPort, 'MQTT_PORT')
    const result: Listening = { mqtt, close, drain }
    if (opts.wsPort !== undefined) {
      const http = createHttpServer((_req, res) =>
        res.writeHead(426).end('MQTT over WebSocket only\n'),
      )
      // noServer: errors of the HTTP server (a taken port) stay with listen() below.
      const ws = new WebSocketServer({
        noServer: true,
        perMessageDeflate: false,
        maxPayload: opts.maxWsPayloadBytes ?? 65_536 + 16,
      })
      http.on('upgrade', (req, socket, head) => {
        ws.handleUpgrade(req, socket, head, (client) =>
          broker.handle(createWebSocketStream(client), req),
        )
      })
      wss.push(ws)
      mqttServers.push(http)
      result.ws = await open(http, opts.wsPort, 'MQTT_WS_PORT')
    }
    if (opts.tls !== undefined) {
      const { cert, key, port } = opts.tls
      const tls = createTlsServer({ cert, key }, (s) => broker.handle(s))
      mqttServers.push(tls)
      result.tls = await open(tls, port, 'MQTTS_PORT')
    }
    if (opts.metricsPort !== undefined) {
      const http = createHttpServer((req, res) => {
        if (req.url === '/metrics') {
          broker.metrics.registry.metrics().then(
            (text) =>
              res.writeHead(200, { 'content-type': broker.metrics.registry.contentType }).end(text),
            () => res.writeHead(500).end(),
          )
        } else if (req.url === '/health') {
          // A draining broker is alive but takes no new clients: 503 takes it out of
          // the load balancer's rotation (deploy/haproxy.cfg checks this).
          const [status, body] = broker.draining ? [503, 'draining'] : [200, 'ok']
          res
            .writeHead(status, { 'content-type': 'application/json' })
            .end(JSON.stringify({ status: body }))
        } else {
          res.writeHead(404).end()
        }
      })
      result.metrics = await open(http, opts.metricsPort, 'BROKER_METRICS_PORT')
    }
    return result
  } catch (err) {
    await close()
    throw err
  }

  async function drain(windowMs: number): Promise<void> {
    const draining = broker.drain(windowMs) // first: /health answers 503 from now on
    // A connection refused here is retried by the load balancer on another broker
    // (haproxy's redispatch), or by the client itself.
    for (const server of mqttServers) server.close()
    await draining
    await close()
  }

  async function close(): Promise<void> {
    const stopped = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))
    for (const ws of wss) ws.close()
    await broker.close()
    for (const s of servers) if ('closeAllConnections' in s) s.closeAllConnections()
    await Promise.all(stopped)
  }
}

function listen(
  server: NetServer,
  port: number,
  host: string,
  variable: string,
): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(port, variable) : err)
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve(server.address() as AddressInfo)
    })
  })
}
