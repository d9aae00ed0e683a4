import { PassThrough } from 'node:stream'
import type { Duplex } from 'node:stream'
import { describe, expect, it } from 'vitest'
import mqttPacket from 'mqtt-packet'
import { AckWriter } from '../src/ingest/acks.ts'
import { recordWrites } from './helpers.ts'

/** A connection that records what is written to it, write by write, as packets. */
function connection() {
  const stream = new PassThrough()
  return { stream, writes: recordWrites(stream) }
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

describe('AckWriter', () => {
  it("writes a turn's PUBACKs once, in the order acked", async () => {
    const { stream, writes } = connection()
    const acks = new AckWriter(() => true)
    for (const id of [3, 1, 2]) acks.ack(stream, id)
    expect(writes).toEqual([]) // held until the turn's end
    await turn()
    expect(writes).toEqual([['puback 3', 'puback 1', 'puback 2']])
    acks.ack(stream, 4)
    await turn()
    expect(writes).toEqual([['puback 3', 'puback 1', 'puback 2'], ['puback 4']])
  })

  it('drops what was held for a connection that is gone, and writes to the new one', async () => {
    const old = connection()
    const now = connection()
    const acks = new AckWriter((s: Duplex) => s === now.stream)
    acks.ack(old.stream, 1)
    acks.ack(now.stream, 2)
    await turn()
    expect(old.writes).toEqual([])
    expect(now.writes).toEqual([['puback 2']])
  })

  it('writes what is held at once on flush, ahead of what follows', () => {
    const { stream, writes } = connection()
    const acks = new AckWriter(() => true)
    acks.ack(stream, 1)
    acks.flush()
    stream.write(mqttPacket.generate({ cmd: 'puback', messageId: 2 }))
    expect(writes).toEqual([['puback 1'], ['puback 2']])
  })
})
