import { Readable } from 'node:stream'
import aedesPacket from 'aedes-packet'

/** What the outgoing store keeps of a packet: aedes-packet's copy. */
export interface OutgoingPacket {
  brokerId: string
  brokerCounter: number
  messageId?: number
  [field: string]: unknown
}

// A CommonJS module whose types declare a namespace: at run time it is the constructor.
const Packet = aedesPacket as unknown as new (original: object) => OutgoingPacket

const keyOf = (p: { brokerId: string; brokerCounter: number }) => `${p.brokerId}:${p.brokerCounter}`

/**
 * One client's queue of QoS 1/2 messages on their way out (queued, or sent and not
 * acknowledged), indexed both ways aedes looks them up: by broker id and counter when
 * a packet id is given to a message, by packet id when it is acknowledged.
 *
 * Why: aedes-persistence keeps this queue as an array and scans it on every update and
 * every acknowledgement. The api acknowledges QoS 1 only after its batch commits, so it
 * keeps thousands of messages in flight, and the scans made the broker quadratic: at
 * 15,000 QoS 1 msg/s they took 35% of its CPU.
 */
export class OutgoingQueue {
  /** In the order enqueued (a Map iterates in insertion order). */
  private readonly queue = new Map<number, OutgoingPacket>()
  private readonly byCounter = new Map<string, number>()
  private readonly byMessageId = new Map<number, number>()
  private seq = 0

  get size(): number {
    return this.queue.size
  }

  enqueue(packet: OutgoingPacket): void {
    const seq = ++this.seq
    this.queue.set(seq, packet)
    this.byCounter.set(keyOf(packet), seq)
  }

  /**
   * The packet id aedes gave a message (`packet` carries broker id, counter and the
   * new id). As aedes-persistence: a message of another broker with the same packet
   * id is replaced by this one. @throws Error('no such packet') as aedes-persistence.
   */
  update(packet: OutgoingPacket): void {
    const seq = this.byCounter.get(keyOf(packet))
    if (seq !== undefined) {
      const stored = this.queue.get(seq)!
      if (stored.messageId !== undefined) this.byMessageId.delete(stored.messageId)
      stored.messageId = packet.messageId
      if (packet.messageId !== undefined) this.byMessageId.set(packet.messageId, seq)
      return
    }
    const other =
      packet.messageId === undefined ? undefined : this.byMessageId.get(packet.messageId)
    const stored = other === undefined ? undefined : this.queue.get(other)
    if (other !== undefined && stored !== undefined && stored.brokerId !== packet.brokerId) {
      this.byCounter.delete(keyOf(stored))
      this.queue.set(other, packet)
      this.byCounter.set(keyOf(packet), other)
      return
    }
    throw new Error('no such packet')
  }

  /** Removes and returns the message with this packet id (acknowledged), if queued. */
  clear(messageId: number | undefined): OutgoingPacket | undefined {
    const seq = messageId === undefined ? undefined : this.byMessageId.get(messageId)
    if (seq === undefined) return undefined
    const packet = this.queue.get(seq)!
    this.queue.delete(seq)
    this.byMessageId.delete(messageId!)
    this.byCounter.delete(keyOf(packet))
    return packet
  }

  /** A snapshot, in order: what a reconnecting client is sent again. */
  packets(): OutgoingPacket[] {
    return [...this.queue.values()]
  }
}

interface Sub {
  clientId: string
}
interface Client {
  id: string
}

/**
 * The outgoing half of an aedes persistence, in OutgoingQueues: the methods aedes 1.x
 * calls (promise form), to be put in place of the memory persistence's own.
 */
export function indexedOutgoing() {
  const queues = new Map<string, OutgoingQueue>()
  const queueOf = (clientId: string) => {
    let q = queues.get(clientId)
    if (q === undefined) queues.set(clientId, (q = new OutgoingQueue()))
    return q
  }
  const enqueue = (sub: Sub, packet: object) => queueOf(sub.clientId).enqueue(new Packet(packet))
  return {
    outgoingEnqueue: async (sub: Sub, packet: object) => enqueue(sub, packet),
    outgoingEnqueueCombi: async (subs: Sub[], packet: object) => {
      for (const sub of subs) enqueue(sub, packet)
    },
    outgoingUpdate: async (client: Client, packet: OutgoingPacket) => {
      const q = queues.get(client.id)
      if (q === undefined) throw new Error('no such packet')
      q.update(packet)
    },
    outgoingClearMessageId: async (client: Client, packet: { messageId?: number }) => {
      const q = queues.get(client.id)
      const cleared = q?.clear(packet.messageId)
      // An empty queue is dropped: a fleet's worth of clients must not keep one each.
      if (q !== undefined && q.size === 0) queues.delete(client.id)
      return cleared
    },
    outgoingStream: (client: Client) => Readable.from(queues.get(client.id)?.packets() ?? []),
  }
}
