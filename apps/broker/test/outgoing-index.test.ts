import { describe, expect, it } from 'vitest'
import { OutgoingQueue, indexedOutgoing } from '../src/outgoing-index.ts'

const packet = (brokerCounter: number, brokerId = 'b1') => ({
  brokerId,
  brokerCounter,
  topic: `t/${brokerCounter}`,
})

describe('OutgoingQueue', () => {
  it('keeps messages in order, gives them packet ids, and clears them by packet id', () => {
    const q = new OutgoingQueue()
    for (let i = 1; i <= 5; i++) q.enqueue(packet(i))
    q.update({ ...packet(3), messageId: 42 })
    q.update({ ...packet(1), messageId: 7 })
    expect(q.clear(42)?.brokerCounter).toBe(3)
    expect(q.clear(42)).toBeUndefined()
    expect(q.packets().map((p) => p.brokerCounter)).toEqual([1, 2, 4, 5])
    expect(q.packets()[0]!.messageId).toBe(7)
  })

  it('moves a message to its new packet id when it is sent again', () => {
    const q = new OutgoingQueue()
    q.enqueue(packet(1))
    q.update({ ...packet(1), messageId: 10 })
    q.update({ ...packet(1), messageId: 11 })
    expect(q.clear(10)).toBeUndefined()
    expect(q.clear(11)?.brokerCounter).toBe(1)
    expect(q.size).toBe(0)
  })

  it("replaces another broker's message holding the same packet id, as aedes-persistence does", () => {
    const q = new OutgoingQueue()
    q.enqueue(packet(1, 'old'))
    q.update({ ...packet(1, 'old'), messageId: 5 })
    q.update({ ...packet(9, 'new'), messageId: 5 })
    expect(q.packets()).toEqual([expect.objectContaining({ brokerId: 'new', brokerCounter: 9 })])
  })

  it('refuses to update a message it does not hold', () => {
    const q = new OutgoingQueue()
    q.enqueue(packet(1))
    expect(() => q.update({ ...packet(2), messageId: 3 })).toThrow('no such packet')
  })

  it('acknowledges thousands in flight in any order, leaving the rest in order', () => {
    const q = new OutgoingQueue()
    const n = 10_000
    for (let i = 1; i <= n; i++) {
      q.enqueue(packet(i))
      q.update({ ...packet(i), messageId: i })
    }
    for (let i = n; i >= 1; i -= 2) expect(q.clear(i)?.brokerCounter).toBe(i)
    expect(q.size).toBe(n / 2)
    expect(
      q
        .packets()
        .slice(0, 3)
        .map((p) => p.messageId),
    ).toEqual([1, 3, 5])
  })
})

describe('indexedOutgoing', () => {
  it('queues a copy per subscriber and streams them back in order', async () => {
    const store = indexedOutgoing()
    const subs = [{ clientId: 'a' }, { clientId: 'b' }]
    await store.outgoingEnqueueCombi(subs, { ...packet(1), qos: 1, payload: Buffer.from('x') })
    await store.outgoingEnqueue({ clientId: 'a' }, { ...packet(2), qos: 1 })
    await store.outgoingUpdate({ id: 'a' }, { ...packet(1), messageId: 1 })
    const a: { brokerCounter: number; messageId?: number }[] = []
    for await (const p of store.outgoingStream({ id: 'a' })) a.push(p as (typeof a)[number])
    expect(a.map((p) => [p.brokerCounter, p.messageId])).toEqual([
      [1, 1],
      [2, undefined],
    ])
    // b's copy was not given a's packet id.
    const b: { messageId?: number }[] = []
    for await (const p of store.outgoingStream({ id: 'b' })) b.push(p as (typeof b)[number])
    expect(b[0]!.messageId).toBeUndefined()
    await expect(store.outgoingUpdate({ id: 'nobody' }, { ...packet(1) })).rejects.toThrow()
  })
})
