import type { Duplex } from 'node:stream'

/**
 * Holds a connection's writes until the end of the event-loop turn, so that the
 * deliveries written to it in one turn leave in one buffer and one system call.
 *
 * Why: mqtt-packet corks the stream for each packet it writes and uncorks it on the
 * next tick, writing each packet as five or six small pieces (header, length, topic
 * length, topic, id, payload), and aedes writes every delivery from its own
 * setImmediate. A busy subscriber got one writev per message (a fifth of the broker's
 * CPU under load went to that system call), and, once batched per turn, a writev of
 * hundreds of pieces, each with the stream's own bookkeeping. The pieces written while
 * held are now copied into one buffer, written when the turn ends.
 *
 * What is held is flushed once it reaches half the stream's high-water mark, so it
 * never makes write() return false by itself: a full buffer (writableNeedDrain, which
 * drops QoS 0 and waits for 'drain') still means the peer is not reading.
 */
export function batchWrites(conn: Duplex): void {
  // Shared functions and fields on the stream rather than closures per connection:
  // these cost each idle connection about 450 bytes.
  const batched = conn as Batched
  batched[HELD] = false
  batched[PIECES] = null
  batched[BYTES] = 0
  conn.cork = batchedCork
  conn.write = batchedWrite as Duplex['write']
  conn.end = batchedEnd as Duplex['end']
}

const HELD = Symbol('writes held')
const PIECES = Symbol('pieces held')
const BYTES = Symbol('bytes held')

type Piece = Buffer | string

type Batched = Duplex & {
  [HELD]: boolean
  /** Written while held, not yet handed to the stream; null when none. */
  [PIECES]: Piece[] | null
  [BYTES]: number
}

/** The stream's own methods, which the ones set on the instance hide. */
interface Own {
  write: (this: Duplex, ...args: unknown[]) => boolean
  end: (this: Duplex, ...args: unknown[]) => Duplex
}

function own(conn: Batched): Own {
  return Object.getPrototypeOf(conn) as Own
}

/**
 * mqtt-packet's cork before each packet: the first of a turn starts holding; the
 * stream itself is never corked, as what is held never reaches it before release.
 */
function batchedCork(this: Batched): void {
  if (!this[HELD]) {
    this[HELD] = true
    setImmediate(release, this)
  } else if (this[BYTES] + this.writableLength >= this.writableHighWaterMark / 2) {
    flush(this)
  }
}

function batchedWrite(this: Batched, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
  const simple =
    this[HELD] &&
    !this.writableEnded &&
    cb === undefined &&
    (encoding === undefined || encoding === 'utf8') &&
    (typeof chunk === 'string' || Buffer.isBuffer(chunk))
  if (!simple) {
    flush(this)
    return own(this).write.call(this, chunk, encoding, cb)
  }
  ;(this[PIECES] ??= []).push(chunk)
  this[BYTES] += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length
  // What the stream's write would say now: held bytes are bounded in batchedCork.
  return !this.writableNeedDrain
}

function batchedEnd(this: Batched, ...args: unknown[]): Duplex {
  flush(this)
  return own(this).end.call(this, ...args)
}

/** Hands what is held to the stream as one buffer. */
function flush(conn: Batched): void {
  const pieces = conn[PIECES]
  if (pieces === null) return
  conn[PIECES] = null
  const bytes = conn[BYTES]
  conn[BYTES] = 0
  if (conn.destroyed) return // dropped, as the stream drops what it buffered
  const buffer = Buffer.allocUnsafe(bytes)
  let at = 0
  for (const piece of pieces) {
    at += typeof piece === 'string' ? buffer.write(piece, at) : piece.copy(buffer, at)
  }
  own(conn).write.call(conn, buffer)
}

function release(conn: Batched): void {
  conn[HELD] = false
  flush(conn)
}
