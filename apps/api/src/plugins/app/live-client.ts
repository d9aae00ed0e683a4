// One client of the live stream and what it may cost the api (issue 14): the frames it
// is sent, the bytes of them it has not yet read, and how long it leaves a ping unanswered.
import { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { WebSocket } from '@fastify/websocket'
import type { FleetScope } from '../../auth/principal.ts'

/** How long a dropped client's close frame may take to get through before its socket is reset, ms. */
const CLOSE_GRACE_MS = 1_000
/** A client sent nothing is still pinged this often, ms: so a dead peer is found. */
const IDLE_PING_MS = 1_000

export interface FlowLimits {
  /** Bytes sent and not confirmed read a client may have beyond its snapshot (LIVE_SEND_BUDGET_BYTES). */
  budgetBytes: number
  /** Longest a ping may go unanswered, ms (LIVE_MAX_LAG_MS). */
  maxLagMs: number
}

/** Why a client was dropped: too much unread (`send_budget`), or a ping unanswered too long (`lag`). */
export type DropReason = 'send_budget' | 'lag'

/**
 * A live client's frames and flow control. A ping follows the frames; its pong comes back
 * only once the client has read everything sent before it (RFC 6455 answers pings in
 * order, browsers and `ws` by themselves), so the bytes sent since the last ping answered
 * are what the client has not read yet, wherever they wait: the api's queue, the kernel's
 * on either end, the network. The socket's bufferedAmount alone would show the api's
 * queue only once the kernel's buffers (about 2 MB a socket on loopback, which Node
 * cannot make smaller: it has no SO_SNDBUF for TCP) are full, seconds later; it is still
 * checked, as the bound of the api's own memory whatever a client answers.
 */
export class LiveClient<B> {
  bounds: B | undefined
  /**
   * The fleets it may see and their scopeKey; none until it has signed in, and until then
   * it is sent nothing (its place among the clients is held meanwhile).
   */
  scope: { fleets: FleetScope; key: string } | undefined
  private closing = false
  private snapshotOut = false
  /**
   * Frames not yet written: until the snapshot is out (none is lost, none comes first),
   * and while the socket's queue is not empty (the kernel's buffer is full: the client
   * is not reading now). They wait here as one reference each to a buffer shared with
   * the other clients, rather than as entries of the socket's queue.
   */
  private backlog: Buffer[] = []
  private backlogBytes = 0
  private sentBytes = 0
  /** sentBytes when the last ping the client answered was sent. */
  private readBytes = 0
  /** The snapshot is allowed beyond the budget until it is read (it may be megabytes). */
  private snapshotBytes = 0
  private snapshotEnd = 0
  private readonly pings: { seq: number; at: number; sentBytes: number }[] = []
  private lastPing: { at: number; sentBytes: number }

  constructor(
    readonly socket: WebSocket,
    readonly address: string,
    /** The TCP socket under the WebSocket, when there is one (not under injectWS). */
    private readonly raw: Duplex | undefined,
    private readonly limits: FlowLimits,
    now: number,
  ) {
    this.lastPing = { at: now, sentBytes: 0 }
  }

  /** Sends a frame (a buffer shared with other clients), or keeps it in the backlog. */
  send(data: Buffer): void {
    if (this.snapshotOut && this.backlog.length === 0 && this.socket.bufferedAmount === 0) {
      this.write(data)
    } else {
      this.backlog.push(data)
      this.backlogBytes += data.length
    }
  }

  /** Sends the snapshot, then the frames held meanwhile. */
  sendSnapshot(data: Buffer): void {
    this.write(data)
    this.snapshotBytes = data.length
    this.snapshotEnd = this.sentBytes
    this.snapshotOut = true
    this.flush()
  }

  /** A message outside the stream (an answer to the client), sent at once. */
  reply(text: string): void {
    this.write(Buffer.from(text))
  }

  /**
   * Writes the backlog if the socket's queue has emptied, then pings: when something was
   * written since the last ping, or nothing for IDLE_PING_MS. Not while the queue is
   * full and a ping is unanswered: that ping already says when the client reads again.
   */
  ping(seq: number, payload: Buffer, now: number): void {
    if (!this.snapshotOut || this.closing) return
    if (this.socket.bufferedAmount === 0) this.flush()
    else if (this.pings.length > 0) return
    const idle = this.sentBytes === this.lastPing.sentBytes
    if (idle && now - this.lastPing.at < IDLE_PING_MS) return
    this.lastPing = { at: now, sentBytes: this.sentBytes }
    this.pings.push({ seq, ...this.lastPing })
    this.socket.ping(payload)
  }

  /** A pong carries its ping's payload: everything sent before that ping has been read. */
  pong(data: Buffer): void {
    if (data.length !== 4) return // not one of ours (RFC 6455 allows unsolicited pongs)
    const seq = data.readUInt32BE(0)
    while (this.pings.length > 0 && this.pings[0]!.seq <= seq) {
      this.readBytes = this.pings.shift()!.sentBytes
    }
  }

  /** Why this client must go, if it must. */
  verdict(now: number): DropReason | undefined {
    const snapshotUnread = this.readBytes < this.snapshotEnd ? this.snapshotBytes : 0
    const allowed = this.limits.budgetBytes + snapshotUnread
    const unread = this.sentBytes + this.backlogBytes - this.readBytes
    if (unread > allowed || this.socket.bufferedAmount > allowed) {
      return 'send_budget'
    }
    const oldest = this.pings[0]
    if (oldest !== undefined && now - oldest.at > this.limits.maxLagMs) return 'lag'
    return undefined
  }

  /**
   * Closes with `code` and `reason`, then resets the connection if the close has not
   * gone through within CLOSE_GRACE_MS: the close frame waits behind all the client has
   * not read, so one that does not read never gets it, and its socket would keep its
   * kernel buffers for ws's 30 s closing handshake, then as an orphan; a reset (RST)
   * frees them at once.
   */
  close(code: number, reason: string): void {
    if (this.closing) return
    this.closing = true
    this.socket.close(code, reason)
    const timer = setTimeout(() => {
      if (this.raw instanceof Socket) this.raw.resetAndDestroy()
      else this.socket.terminate()
    }, CLOSE_GRACE_MS)
    timer.unref()
    this.socket.once('close', () => clearTimeout(timer))
  }

  private flush(): void {
    for (const frame of this.backlog) this.write(frame)
    this.backlog = []
    this.backlogBytes = 0
  }

  private write(data: Buffer): void {
    this.sentBytes += data.length
    // A text frame, as JSON is: ws sends a Buffer as binary unless told.
    this.socket.send(data, { binary: false })
  }
}
