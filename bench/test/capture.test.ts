import { once } from 'node:events'
import { createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { connect } from 'node:net'
import { describe, expect, it } from 'vitest'
import {
  LOOPBACK_LINK_HEADER_BYTES,
  connections,
  isClosed,
  parseSegments,
  startCapture,
  totals,
} from '../capture.ts'
import { conn, seg } from './segments.ts'

describe('loopback capture', () => {
  it('counts every segment of a connection: handshake, data and teardown', async () => {
    const server = createServer((socket: Socket) => {
      socket.once('data', () => socket.end('ok'))
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as AddressInfo
    const capture = await startCapture([port])
    try {
      const client = connect(port, '127.0.0.1')
      await once(client, 'connect')
      const clientPort = client.localPort!
      client.write('hello')
      client.resume()
      await once(client, 'end')
      client.end()
      await once(client, 'close')
      const segments = await capture.stop()

      const [c, ...others] = connections(segments)
      expect(others).toEqual([])
      expect(c).toMatchObject({ clientPort, serverPort: port })
      // The three-way handshake opens it [RFC 9293, 3.5].
      const [syn, synAck, ack] = c!.segments
      expect(syn).toMatchObject({ srcPort: clientPort, syn: true, ack: false })
      expect(synAck).toMatchObject({ srcPort: port, syn: true, ack: true })
      expect(ack).toMatchObject({ srcPort: clientPort, syn: false, payloadBytes: 0 })
      const sent = (from: number) =>
        c!.segments.filter((s) => s.srcPort === from).reduce((n, s) => n + s.payloadBytes, 0)
      expect(sent(clientPort)).toBe(5)
      expect(sent(port)).toBe(2)
      expect(c!.segments.filter((s) => s.fin).map((s) => s.srcPort)).toEqual([port, clientPort])
      expect(isClosed(c!)).toBe(true)
      // IP bytes: each frame less loopback's fake Ethernet header; IPv4 and TCP headers
      // (20 + 32 with timestamps) on every segment, handshake and teardown included.
      for (const s of segments) expect(s.frameBytes - s.ipBytes).toBe(LOOPBACK_LINK_HEADER_BYTES)
      const t = totals(segments)
      expect(t.packets).toBeGreaterThanOrEqual(8) // 3 to open, 2 with data, 2 FINs, last ACK
      expect(t.payloadBytes).toBe(7)
      expect(t.bytes).toBe(segments.reduce((n, s) => n + s.ipBytes, 0))
      expect(t.bytes).toBeGreaterThanOrEqual(7 + 40 * t.packets)
    } finally {
      capture.abort()
      server.close()
    }
  })
})

describe('reading a capture', () => {
  it("reads tshark's fields, either spelling of its booleans", () => {
    const [a, b] = parseSegments(
      `${seg(0, 40000, 1883, 0, 'S')}\n0\t1883\t40000\t74\t60\t0\tTrue\tTrue\tFalse\tFalse\n`,
    )
    expect(a).toMatchObject({ syn: true, ack: false, ipBytes: 52, frameBytes: 66 })
    expect(b).toMatchObject({ srcPort: 1883, syn: true, ack: true, ipBytes: 60 })
    expect(() => parseSegments('0\t1\t2\n')).toThrow(/frame.len/)
  })

  it('tells the client by its SYN and a connection as closed once both ends sent FIN', () => {
    const open = connections(parseSegments(conn(3, 40000, [10]).slice(0, 5).join('\n')))
    expect(open).toMatchObject([{ stream: 3, clientPort: 40000, serverPort: 1883 }])
    expect(isClosed(open[0]!)).toBe(false)
    const closed = connections(parseSegments(conn(3, 40000, [10]).join('\n')))
    expect(isClosed(closed[0]!)).toBe(true)
  })

  it('splits what loopback sends in one segment as an MTU of 1,500 would', () => {
    const t = totals(parseSegments(seg(0, 1883, 40000, 3_000, 'A')))
    expect(t).toMatchObject({
      packets: 1,
      bytes: 3_052,
      packetsAtMtu1500: 3,
      bytesAtMtu1500: 3_156,
    })
  })
})
