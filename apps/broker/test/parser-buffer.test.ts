import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { signDeviceToken } from '@skyline/auth'
import { SECRET, nextMessage, startTestBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'
import { RawClient } from './raw-client.ts'

let tb: TestBroker | undefined
let raw: RawClient | undefined
afterEach(async () => {
  raw?.destroy()
  await tb?.close()
})

/** Writes `bytes` one at a time, each write flushed before the next. */
async function writeByteByByte(r: RawClient, bytes: Buffer): Promise<void> {
  r.socket.setNoDelay(true)
  for (const byte of bytes) {
    await new Promise<void>((resolve, reject) =>
      r.socket.write(Buffer.of(byte), (err) => (err ? reject(err) : resolve())),
    )
  }
}

const publish = (seq: number) =>
  mqttPacket.generate({
    cmd: 'publish',
    topic: 'fleet/f1/drones/d1/telemetry',
    payload: Buffer.from(`{"seq":${seq}}`),
    qos: 0,
    retain: false,
    dup: false,
  })

describe("the parser's plain buffer list", () => {
  it('reassembles packets split across reads and separates packets read together', async () => {
    tb = await startTestBroker({ rateLimit: null })
    const watcher = await tb.connect({ role: 'service', sub: 'watcher' })
    await watcher.subscribeAsync('fleet/f1/drones/+/telemetry')
    raw = await RawClient.open(tb.listening.mqtt.port)
    raw.sendConnect(
      'd1',
      'd1',
      Buffer.from(await signDeviceToken(SECRET, { role: 'drone', sub: 'd1', fleet: 'f1' })),
    )
    expect(await raw.next()).toMatchObject({ cmd: 'connack', returnCode: 0 })

    // The parser keeps a plain BufferList, not the Duplex stream mqtt-packet makes.
    type AedesClient = { id: string; _parser: { _list: { length: number; pipe?: unknown } } }
    const clients = (tb.broker.aedes as unknown as { clients: Record<string, AedesClient> }).clients
    const list = Object.values(clients).find((c) => c.id.endsWith('|d1'))?._parser._list
    expect(list?.length).toBe(0)
    expect(list).not.toHaveProperty('pipe')

    const first = nextMessage(watcher)
    await writeByteByByte(raw, publish(1))
    expect((await first).payload).toBe('{"seq":1}')

    const seen: string[] = []
    const both = new Promise<void>((resolve) =>
      watcher.on('message', (_topic, payload) => {
        seen.push(payload.toString())
        if (seen.length === 2) resolve()
      }),
    )
    raw.socket.write(Buffer.concat([publish(2), publish(3)]))
    await both
    expect(seen).toEqual(['{"seq":2}', '{"seq":3}'])
  })
})
