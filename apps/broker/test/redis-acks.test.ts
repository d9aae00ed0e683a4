import { afterAll, describe, expect, it } from 'vitest'
import { dropClusterKeys, startTestBroker, TEST_REDIS_URL, testClusterName } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

interface Packet {
  cmd: string
  topic: string
  payload: Buffer
  qos: number
  retain: boolean
  brokerId: string
  brokerCounter: number
  messageId?: number
}

/** The persistence calls aedes makes for a QoS 1 message on its way to persistent sessions. */
interface Outgoing {
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: Packet): Promise<void>
  outgoingUpdate(client: object, packet: Packet): Promise<void>
  outgoingClearMessageId(client: object, packet: { messageId: number }): Promise<unknown>
  outgoingStream(client: { id: string }): AsyncIterable<Packet>
}

const cluster = testClusterName('acks')
const brokers: TestBroker[] = []

/** The persistence of a real broker of the cluster, called as aedes calls it. */
async function broker(): Promise<Outgoing> {
  const tb = await startTestBroker({ redisUrl: TEST_REDIS_URL, cluster })
  brokers.push(tb)
  return (tb.broker.aedes as unknown as { persistence: Outgoing }).persistence
}

async function queued(p: Outgoing, id: string): Promise<Packet[]> {
  const out: Packet[] = []
  for await (const packet of p.outgoingStream({ id })) out.push(packet)
  return out
}

afterAll(async () => {
  await Promise.all(brokers.map((b) => b.close()))
  await dropClusterKeys(cluster)
})

describe('QoS 1 acknowledgements of persistent sessions in Redis', () => {
  it('keeps a message queued for one session when another acknowledges it twice', async () => {
    // Issue 17: the observer's session gets a message, its connection dies before the
    // PUBACK is processed, and its next connection (on the other broker) gets the queue
    // again: both PUBACKs counted the message off. The count the api's queue relied on
    // reached 0 and the packet was deleted while the api's queue still named it.
    const a = await broker()
    const b = await broker()
    const packet: Packet = {
      cmd: 'publish',
      topic: 'fleet/f1/drones/d1/telemetry',
      payload: Buffer.from('{"seq":1}'),
      qos: 1,
      retain: false,
      brokerId: 'broker-a',
      brokerCounter: 1,
    }
    await a.outgoingEnqueueCombi([{ clientId: 'api' }, { clientId: 'observer' }], packet)
    const first = { id: 'observer' }
    const second = { id: 'observer' }
    await a.outgoingUpdate(first, { ...packet, messageId: 11 })
    await b.outgoingUpdate(second, { ...packet, messageId: 12 }) // the queue, replayed on B
    await a.outgoingClearMessageId(first, { messageId: 11 })
    await b.outgoingClearMessageId(second, { messageId: 12 })

    expect(await queued(b, 'observer')).toEqual([])
    const forApi = await queued(a, 'api')
    expect(forApi.map((p) => p.payload.toString())).toEqual(['{"seq":1}'])
    // The api acknowledges it: the last holder, so the packet goes.
    const api = { id: 'api' }
    await a.outgoingUpdate(api, { ...forApi[0]!, messageId: 5 })
    await a.outgoingClearMessageId(api, { messageId: 5 })
    expect(await queued(a, 'api')).toEqual([])
  })

  it("gives a replayed queue no other session's packet identifier", async () => {
    const a = await broker()
    const packet: Packet = {
      cmd: 'publish',
      topic: 'fleet/f1/drones/d2/telemetry',
      payload: Buffer.from('{"seq":2}'),
      qos: 1,
      retain: false,
      brokerId: 'broker-a',
      brokerCounter: 2,
    }
    await a.outgoingEnqueueCombi([{ clientId: 'api2' }, { clientId: 'observer2' }], packet)
    // The observer's connection was given it as packet 42: the api's replay must not be.
    await a.outgoingUpdate({ id: 'observer2' }, { ...packet, messageId: 42 })
    const [replayed] = await queued(a, 'api2')
    expect(replayed?.payload.toString()).toBe('{"seq":2}')
    expect(replayed?.messageId ?? undefined).toBeUndefined()
  })
})
