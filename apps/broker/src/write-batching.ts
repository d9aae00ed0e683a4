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
  const cork = conn.cork.bind(conn)
  const flushAt = conn.writableHighWaterMark / 2
  let held = false
  const release = () => {
    if (!held) return
    held = false
    conn.uncork()
  }
  conn.cork = () => {
    if (held && conn.writableLength >= flushAt) release()
    if (!held) {
      held = true
      cork()
      setImmediate(release)
    }
    cork()
  }
}
