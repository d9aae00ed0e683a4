import { describe, expect, it } from 'vitest'
import { connections, parseSegments } from '../capture.ts'
import { wireRow } from '../wire.ts'
import { conn } from './segments.ts'

describe('wire bench rows', () => {
  it('amortises the carrying connections over the messages and takes the median empty session', () => {
    const lines = [
      ...conn(0, 40000, [100, 4, 100, 4]), // 2 messages, on the message connection
      ...conn(1, 40001, [300]), // warm-up session, left out
      ...conn(2, 40002, [50]),
      ...conn(3, 40003, [10]),
      ...conn(4, 40004, [90]),
      ...conn(5, 50000, [999]).map((l) => l.replaceAll('1883', '8883')), // another port
    ]
    const captured = connections(parseSegments(lines.join('\n')))
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
