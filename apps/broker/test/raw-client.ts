import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import type { Packet } from 'mqtt-packet'

/**
 * A bare MQTT 3.1.1 connection for the cases a well-behaved client library will not
 * produce (an empty client id with a persistent session, a duplicate QoS 2 PUBLISH).
 */
export class RawClient {
  private readonly queue: Packet[] = []
  private waiting: ((p: Packet) => void) | undefined
  readonly closed: Promise<void>

  private constructor(readonly socket: Socket) {
    const parser = mqttPacket.parser()
    parser.on('packet', (packet: Packet) => {
      const w = this.waiting
      if (w) {
        this.waiting = undefined
        w(packet)
      } else this.queue.push(packet)
    })
    socket.on('data', (chunk) => parser.parse(chunk))
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()))
  }

  static async open(port: number): Promise<RawClient> {
    const socket = tcpConnect({ host: '127.0.0.1', port })
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    return new RawClient(socket)
  }

  send(packet: Packet): void {
    this.socket.write(mqttPacket.generate(packet))
  }

  /** Writes `bytes` as they are: for packets mqtt-packet will not generate. */
  sendBytes(bytes: Buffer): void {
    this.socket.write(bytes)
  }

  /** Sends a CONNECT (MQTT 3.1.1, keepalive 30 s) with these credentials. */
  sendConnect(clientId: string, username: string, password: Buffer, clean = true): void {
    this.socket.write(connectBytes(clientId, username, password, clean))
  }

  /**
   * Sends a CONNECT with an empty client id and CleanSession 0, which mqtt-packet
   * refuses to generate: the packet is generated with CleanSession 1 and the flag cleared.
   */
  sendConnectWithEmptyIdAndPersistentSession(username: string, password: Buffer): void {
    const bytes = connectBytes('', username, password, true)
    let offset = 1 // fixed header byte, then the remaining length (1 to 4 bytes)
    while ((bytes[offset++]! & 0x80) !== 0);
    const flags = offset + 2 + 4 + 1 // protocol name "MQTT" with its length, protocol level
    bytes[flags] = bytes[flags]! & ~0x02 // CleanSession is bit 1 [MQTT-3.1.2.4]
    this.socket.write(bytes)
  }

  /** The next packet from the broker, or an error after `timeoutMs` or when the socket closes. */
  next(timeoutMs = 5_000): Promise<Packet> {
    const queued = this.queue.shift()
    if (queued) return Promise.resolve(queued)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no packet within ${timeoutMs} ms`)),
        timeoutMs,
      )
      void this.closed.then(() => reject(new Error('connection closed')))
      this.waiting = (p) => {
        clearTimeout(timer)
        resolve(p)
      }
    })
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/**
 * `packet` as bytes, with the UTF-8 of `placeholder` (which must occur once) replaced by
 * `bytes` of the same length: how ill-formed UTF-8, which no JS string holds, gets
 * into a topic or a client id.
 */
export function generateWithBytes(packet: Packet, placeholder: string, bytes: Buffer): Buffer {
  const generated = mqttPacket.generate(packet)
  const marker = Buffer.from(placeholder)
  const at = generated.indexOf(marker)
  if (marker.length !== bytes.length || at === -1 || generated.indexOf(marker, at + 1) !== -1) {
    throw new Error(`placeholder ${placeholder} must occur once and be ${bytes.length} bytes long`)
  }
  bytes.copy(generated, at)
  return generated
}

function connectBytes(
  clientId: string,
  username: string,
  password: Buffer,
  clean: boolean,
): Buffer {
  return mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    keepalive: 30,
    clientId,
    clean,
    username,
    password,
  })
}
