import type { Duplex } from 'node:stream'

/**
 * Holds a connection's writes until the end of the event-loop turn, so that the
 * deliveries written to it in one turn leave in one system call.
 *
 * Why: mqtt-packet corks the stream for each packet it writes and uncorks it on the
 * next tick, and aedes writes every delivery from its own setImmediate, so a busy
 * subscriber got one writev per message: a fifth of the broker's CPU under load
 * went to that system call.
 *
 * What is held is flushed once it reaches half the stream's high-water mark, so it
 * never makes write() return false by itself: a full buffer (writableNeedDrain, which
 * drops QoS 0 and waits for 'drain') still means the peer is not reading.
 */
export function batchWrites(conn: Duplex): void {
  // Shared functions and one flag on the stream rather than closures per connection:
  // these cost each idle connection about 450 bytes.
  ;(conn as Batched)[HELD] = false
  conn.cork = batchedCork
}

const HELD = Symbol('writes held')

type Batched = Duplex & { [HELD]: boolean }

function batchedCork(this: Batched): void {
  // The stream's own cork, which the one set on the instance hides.
  const { cork } = Object.getPrototypeOf(this) as { cork: (this: Duplex) => void }
  if (this[HELD] && this.writableLength >= this.writableHighWaterMark / 2) release(this)
  if (!this[HELD]) {
    this[HELD] = true
    cork.call(this)
    setImmediate(release, this)
  }
  cork.call(this)
}

function release(conn: Batched): void {
  if (!conn[HELD]) return
  conn[HELD] = false
  conn.uncork()
}
