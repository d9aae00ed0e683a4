import type { Message } from 'mqemitter'

type Done = (err?: Error | null) => void
type Notify = (message: Message, done: () => void) => void

/** The part of the mqemitter interface aedes uses. */
export interface MessageEmitter {
  on(topic: string, notify: Notify, done?: () => void): unknown
  removeListener(topic: string, notify: Notify, done?: () => void): unknown
  emit(message: Message, done?: Done): unknown
  close(done: () => void): unknown
}

/**
 * Puts a bound on the messages the broker routes at once, in front of any mqemitter
 * (in memory or Redis).
 *
 * Why: with many publishers flooding QoS 0 faster than a subscriber reads, aedes's
 * default mqemitter queues every message without bound and completes queued ones
 * through nested synchronous callbacks (release -> next emit -> publisher's next
 * packet -> emit ...) until the stack overflows and the process dies. Here the inner
 * emitter runs without a queue (concurrency 0), each completion is deferred with
 * setImmediate when it comes within emit, so no callback chain can grow the stack,
 * and once `maxInFlight` messages are being routed, further QoS 0 messages are
 * dropped and counted (at most once allows it) while QoS 1 and 2 wait, which slows
 * their publishers through TCP.
 */
export class BoundedEmitter implements MessageEmitter {
  private inFlight = 0

  constructor(
    private readonly inner: MessageEmitter,
    /** Messages routed at once before QoS 0 is dropped. */
    private readonly maxInFlight: number,
    private readonly onDrop: () => void,
  ) {}

  get messagesInFlight(): number {
    return this.inFlight
  }

  on(topic: string, notify: Notify, done?: () => void): this {
    this.inner.on(topic, notify, done)
    return this
  }

  removeListener(topic: string, notify: Notify, done?: () => void): this {
    this.inner.removeListener(topic, notify, done)
    return this
  }

  emit(packet: Message, done: Done = noop): this {
    // $SYS packets carry the broker's own heartbeats and client registrations.
    if (
      packet.qos === 0 &&
      this.inFlight >= this.maxInFlight &&
      !packet.topic.startsWith('$SYS/')
    ) {
      this.onDrop()
      setImmediate(done)
      return this
    }
    this.inFlight++
    let returned = false
    this.inner.emit(packet, (err) => {
      this.inFlight--
      // Only a completion within emit (no subscriber matched) can chain into the next
      // packet on the same stack; one that comes later already runs on a fresh stack
      // (every delivery is written from a setImmediate), so it goes on at once.
      if (returned) done(err)
      else setImmediate(done, err)
    })
    returned = true
    return this
  }

  close(done: () => void): this {
    this.inner.close(done)
    return this
  }
}

function noop(): void {}
