// Bare MQTT 3.1.1 over TCP with mqtt-packet: the same bytes and the same client-side
// cost against both brokers, which a full client library would blur.
import { connect as tcpConnect } from 'node:net'
import type { Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import type { Packet, Parser } from 'mqtt-packet'
import type { Credentials } from './load-types.ts'

export interface RawConnection {
  socket: Socket
  /** Parses everything the broker sends after CONNACK; add a 'packet' listener. */
  parser: Parser
}

const CONNECT_TIMEOUT_MS = 10_000

/** Opens a clean session and resolves once the broker accepted it (CONNACK 0). */
export async function connectRaw(
  port: number,
  who: Credentials,
  keepaliveS = 60,
): Promise<RawConnection> {
  const socket = tcpConnect({ host: '127.0.0.1', port })
  socket.setNoDelay(true) // Nagle would hold back small writes and measure our latency
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  socket.on('data', (chunk: Buffer) => parser.parse(chunk))
  let fail: (err: Error) => void = () => {}
  const onClose = () => fail(new Error(`${who.clientId}: closed before CONNACK`))
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${who.clientId}: no CONNACK within ${CONNECT_TIMEOUT_MS} ms`)),
        CONNECT_TIMEOUT_MS,
      )
      fail = (err: Error) => {
        clearTimeout(timer)
        reject(err)
      }
      socket.on('error', fail)
      socket.once('close', onClose)
      parser.once('error', fail)
      parser.once('packet', (packet: Packet) => {
        clearTimeout(timer)
        if (packet.cmd === 'connack' && packet.returnCode === 0) resolve()
        else fail(new Error(`${who.clientId}: refused (${JSON.stringify(packet)})`))
      })
      socket.once('connect', () =>
        socket.write(
          mqttPacket.generate({
            cmd: 'connect',
            protocolId: 'MQTT',
            protocolVersion: 4,
            clean: true,
            keepalive: keepaliveS,
            clientId: who.clientId,
            username: who.username,
            password: Buffer.from(who.password),
          }),
        ),
      )
    })
  } catch (err) {
    socket.destroy()
    throw err
  }
  socket.off('close', onClose)
  socket.off('error', fail)
  // A socket error after CONNACK shows up as a short count or a closed subscriber, not a crash.
  socket.on('error', () => {})
  return { socket, parser }
}

/** Connects `who` in batches of `batch` at a time, so the broker's listen backlog never overflows. */
export async function connectInBatches(
  port: number,
  who: Credentials[],
  batch: number,
): Promise<RawConnection[]> {
  const all: RawConnection[] = []
  try {
    for (let i = 0; i < who.length; i += batch) {
      const settled = await Promise.allSettled(
        who.slice(i, i + batch).map((w) => connectRaw(port, w)),
      )
      for (const s of settled) if (s.status === 'fulfilled') all.push(s.value)
      const failed = settled.find((s) => s.status === 'rejected')
      if (failed) throw failed.reason
    }
    return all
  } catch (err) {
    for (const c of all) c.socket.destroy()
    throw err
  }
}

/** Subscribes to one filter and checks the broker granted it. */
export async function subscribeRaw(conn: RawConnection, filter: string, qos: 0 | 1): Promise<void> {
  const granted = await new Promise<number | undefined>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no SUBACK within 5 s')), 5_000)
    conn.parser.once('packet', (packet: Packet) => {
      clearTimeout(timer)
      if (packet.cmd !== 'suback') return reject(new Error(`expected SUBACK, got ${packet.cmd}`))
      resolve(packet.granted[0] as number | undefined)
    })
    conn.socket.write(
      mqttPacket.generate({
        cmd: 'subscribe',
        messageId: 1,
        subscriptions: [{ topic: filter, qos }],
      }),
    )
  })
  // [MQTT-3.9.3] 0x80 is a refusal; a lower QoS than asked would change what is measured.
  if (granted !== qos) throw new Error(`SUBSCRIBE ${filter} qos ${qos}: granted ${granted}`)
}
