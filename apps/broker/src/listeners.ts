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
}

/** Opens the broker's listeners; on any failure closes the ones already open. */
export async function startListeners(
  broker: SkylineBroker,
  opts: ListenOptions,
): Promise<Listening> {
  const servers: (NetServer | HttpServer)[] = []
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
    const mqtt = await open(
      createTcpServer((socket) => broker.handle(socket)),
      opts.mqttPort,
      'MQTT_PORT',
    )
    const result: Listening = { mqtt, close }
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
      result.ws = await open(http, opts.wsPort, 'MQTT_WS_PORT')
    }
    if (opts.tls !== undefined) {
      const { cert, key, port } = opts.tls
      result.tls = await open(
        createTlsServer({ cert, key }, (s) => broker.handle(s)),
        port,
        'MQTTS_PORT',
      )
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
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}')
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
