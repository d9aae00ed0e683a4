import { Writable } from 'node:stream'
import type { Duplex } from 'node:stream'
import { setImmediate as nextTurn } from 'node:timers/promises'
import mqttPacket from 'mqtt-packet'
import { describe, expect, it } from 'vitest'
import { batchWrites } from '../src/write-batching.ts'

/** A stream that records each batch it is asked to write. */
function recordingStream(highWaterMark: number) {
  const batches: number[] = []
  /** Buffers handed to the stream, per batch. */
  const pieces: number[] = []
  const bytes: Buffer[] = []
  const stream = new Writable({
    highWaterMark,
    writev(chunks, done) {
      batches.push(chunks.reduce((n, c) => n + (c.chunk as Buffer).length, 0))
      pieces.push(chunks.length)
      bytes.push(...chunks.map((c) => c.chunk as Buffer))
      done()
    },
    write(chunk: Buffer, _encoding, done) {
      batches.push(chunk.length)
      pieces.push(1)
      bytes.push(chunk)
      done()
    },
  })
  batchWrites(stream as unknown as Duplex)
  return { stream, batches, pieces, bytes }
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

  it('copies the pieces mqtt-packet writes into one buffer, bytes unchanged', async () => {
    const { stream, pieces, bytes } = recordingStream(16_384)
    for (let i = 0; i < 3; i++) {
      mqttPacket.writeToStream(publish(i), stream) // five pieces each
      await tick()
    }
    await nextTurn()
    expect(pieces).toEqual([1])
    expect(Buffer.concat(bytes)).toEqual(
      Buffer.concat([0, 1, 2].map((i) => mqttPacket.generate(publish(i)))),
    )
  })

  it('writes what it holds before end(), as a refusal written just before closing', async () => {
    const { stream, bytes } = recordingStream(16_384)
    const connack = { cmd: 'connack' as const, returnCode: 5, sessionPresent: false }
    mqttPacket.writeToStream(connack, stream)
    const finished = new Promise((resolve) => stream.once('finish', resolve))
    stream.end()
    await finished
    expect(Buffer.concat(bytes)).toEqual(mqttPacket.generate(connack))
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
