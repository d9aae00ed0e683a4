import type { Duplex } from 'node:stream'
import mqttPacket from 'mqtt-packet'

/**
 * The PUBACKs of committed QoS 1 messages, written to the broker together.
 *
 * Why: the messages of a batch are all acknowledged when it commits, each from its own
 * promise, and a PUBACK written alone is a system call of its own: at 20,000 msg/s those
 * writes took 6% of the ingest's busy time (issue #7), and the broker read as many. What
 * is acked in one turn of the event loop leaves in one write, in the order acked
 * (MQTT-4.6.0-2): the acks come from the commit's promise reactions, and the write from
 * process.nextTick, which runs once those microtasks are done.
 */
export class AckWriter {
  private held: number[] = []
  private heldFor: Duplex | undefined

  /** `live(stream)`: whether `stream` is still the client's connection, and connected. */
  constructor(private readonly live: (stream: Duplex) => boolean) {}

  /** Acknowledges `messageId` on `stream`, the connection the message came in on. */
  ack(stream: Duplex, messageId: number): void {
    if (stream !== this.heldFor) this.flush()
    this.heldFor = stream
    if (this.held.push(messageId) === 1) process.nextTick(() => this.flush())
  }

  /**
   * Writes what is held now, or drops it if the connection is gone: after a reconnect
   * the broker redelivers those messages, and they are acknowledged then.
   */
  flush(): void {
    const ids = this.held
    const stream = this.heldFor
    if (ids.length === 0 || stream === undefined) return
    this.held = []
    this.heldFor = undefined
    if (!this.live(stream)) return
    stream.write(
      Buffer.concat(ids.map((messageId) => mqttPacket.generate({ cmd: 'puback', messageId }))),
    )
  }
}
