import { Writable } from 'node:stream'
import type { Duplex } from 'node:stream'
import { setImmediate as nextTurn } from 'node:timers/promises'
import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { batchWrites } from '../src/write-batching.ts'

/** A stream that records each batch it is asked to write. */
function recordingStream(highWaterMark: number) {
  const batches: number[] = []
  const stream = new Writable({
    highWaterMark,
    writev(chunks, done) {
      batches.push(chunks.reduce((n, c) => n + (c.chunk as Buffer).length, 0))
      done()
    },
    write(chunk: Buffer, _encoding, done) {
      batches.push(chunk.length)
      done()
    },
  })
  batchWrites(stream as unknown as Duplex)
  return { stream, batches }
}

const tick = () => new Promise<void>((resolve) => process.nextTick(resolve))

const publish = (i: number) => ({
  cmd: 'publish' as const,
  topic: `fleet/f1/drones/d${i}/telemetry`,
  payload: Buffer.alloc(100),
  qos: 0 as const,
  retain: false,
  dup: false,
})

describe('batchWrites', () => {
  it('sends the packets written in one event-loop turn in one write', async () => {
    const { stream, batches } = recordingStream(16_384)
    for (let i = 0; i < 10; i++) {
      mqttPacket.writeToStream(publish(i), stream)
      await tick() // mqtt-packet uncorks on the next tick: still held
    }
    expect(batches).toEqual([])
    await nextTurn()
    expect(batches).toHaveLength(1)
    expect(batches[0]).toBe(10 * mqttPacket.generate(publish(0)).length)
  })

  it('flushes at half the high-water mark, so holding never signals backpressure', async () => {
    const { stream, batches } = recordingStream(1_024)
    let full = false
    for (let i = 0; i < 20; i++) {
      full ||= !mqttPacket.writeToStream(publish(i), stream)
      await tick() // as aedes writes each delivery from a setImmediate of its own
    }
    await nextTurn()
    expect(full).toBe(false)
    expect(batches.length).toBeGreaterThan(1)
    expect(Math.max(...batches)).toBeLessThan(1_024)
  })
})
