import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'

export interface FloodOptions {
  port: number
  publishers: number
  durationMs: number
  /** username and password for publisher i; undefined for anonymous brokers. */
  credentials?: (i: number) => { username: string; password: Buffer }
  topic: (i: number) => string
  payloadBytes?: number
}

export interface FloodResult {
  /** PUBLISH packets written to the broker's sockets. */
  sent: number
  /** Publishers whose connection the broker closed. */
  disconnected: number
}

/**
 * QoS 0 publishers that write as fast as their sockets take it (respecting
 * backpressure on our side, so only the broker is under pressure) for a fixed time.
 */
export async function flood(opts: FloodOptions): Promise<FloodResult> {
  const payload = Buffer.alloc(opts.payloadBytes ?? 150, 'x')
  const sockets: Socket[] = []
  let sent = 0
  let disconnected = 0
  let stop = false

  async function publisher(i: number): Promise<void> {
    const socket = tcpConnect({ host: '127.0.0.1', port: opts.port })
    sockets.push(socket)
    socket.on('error', () => {})
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    const creds = opts.credentials?.(i)
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        keepalive: 60,
        clientId: creds?.username ?? `flood-${i}`,
        ...creds,
      }),
    )
    // Publishing before CONNACK would only fill the broker's pre-connect queue.
    const connack = await new Promise<Buffer>((resolve, reject) => {
      socket.once('data', resolve)
      socket.once('close', () => reject(new Error(`publisher ${i}: closed before CONNACK`)))
    })
    if (connack[0] !== 0x20 || connack[3] !== 0)
      throw new Error(`publisher ${i}: CONNACK ${connack.toString('hex')}`)
    socket.resume() // read and ignore anything else
    const one = mqttPacket.generate({
      cmd: 'publish',
      topic: opts.topic(i),
      payload,
      qos: 0,
      retain: false,
      dup: false,
    })
    const batch = Buffer.concat(Array.from({ length: 64 }, () => one))
    let closed = false
    socket.once('close', () => {
      closed = true
      if (!stop) disconnected++
    })
    while (!stop && !closed) {
      sent += 64
      if (!socket.write(batch)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            socket.off('drain', done)
            socket.off('close', done)
            resolve()
          }
          socket.once('drain', done)
          socket.once('close', done)
        })
      } else {
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
    }
  }

  const running = Array.from({ length: opts.publishers }, (_, i) => publisher(i))
  const timer = new Promise<void>((resolve) => setTimeout(resolve, opts.durationMs))
  await Promise.race([timer, Promise.all(running)])
  stop = true
  for (const s of sockets) s.destroy()
  await Promise.allSettled(running)
  return { sent, disconnected }
}
