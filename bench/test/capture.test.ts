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
import type { Segment, TcpConnection } from '../capture.ts'
import { wireRow } from '../wire.ts'

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

const seg = (stream: number, src: number, dst: number, len: number, flags = ''): string =>
  [
    stream,
    src,
    dst,
    14 + 52 + len,
    52 + len,
    len,
    flags.includes('S') ? 1 : 0,
    flags.includes('A') ? 1 : 0,
    flags.includes('F') ? 1 : 0,
    flags.includes('R') ? 1 : 0,
  ].join('\t')

/** A connection from `client` to 1883 with `data` bytes each way and a clean close. */
function conn(stream: number, client: number, data: number[]): string[] {
  return [
    seg(stream, client, 1883, 0, 'S'),
    seg(stream, 1883, client, 0, 'SA'),
    seg(stream, client, 1883, 0, 'A'),
    ...data.map((len, i) =>
      i % 2 ? seg(stream, 1883, client, len, 'A') : seg(stream, client, 1883, len, 'A'),
    ),
    seg(stream, client, 1883, 0, 'AF'),
    seg(stream, 1883, client, 0, 'AF'),
    seg(stream, client, 1883, 0, 'A'),
  ]
}

describe('wire arithmetic', () => {
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

  it('amortises the carrying connections over the messages and takes the median empty session', () => {
    const lines = [
      ...conn(0, 40000, [100, 4, 100, 4]), // 2 messages, on the message connection
      ...conn(1, 40001, [300]), // warm-up session, left out
      ...conn(2, 40002, [50]),
      ...conn(3, 40003, [10]),
      ...conn(4, 40004, [90]),
      ...conn(5, 50000, [999]).map((l) => l.replaceAll('1883', '8883')), // another port
    ]
    const captured: TcpConnection[] = connections(parseSegments(lines.join('\n')))
    const row = wireRow({ transport: 't', to: { port: 1883 }, warmSessions: 1 }, 1, captured, 2)
    const headers = 52 * 10 // 3 to open, 4 with data, 3 to close
    expect(row.connections).toBe(1)
    expect(row.total.packets).toBe(10)
    expect(row.bytesPerMsg).toBe((headers + 208) / 2)
    expect(row.packetsPerMsg).toBe(5)
    expect(row.payloadBytesPerMsg).toBe(104)
    expect(row.newConnection).toMatchObject({ packets: 7, payloadBytes: 50, bytes: 52 * 7 + 50 })
    expect(() => wireRow({ transport: 't', to: { port: 1883 } }, 9, captured, 2)).toThrow(
      /5 connections captured, expected 9/,
    )
  })
})

export type { Segment }
