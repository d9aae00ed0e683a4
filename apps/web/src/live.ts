import type { LiveFrame } from '@skyline/schemas'

export type LiveState = 'connecting' | 'live' | 'reconnecting'

/** Close codes of a stream that refused the token (ARCHITECTURE.md "Live stream"). */
const UNAUTHORIZED = 4401
const FORBIDDEN = 4403

export interface LiveOptions {
  url: string
  /** The token the stream signs in with (its first message); read at each connection. */
  token: () => string | null
  /**
   * The stream refused the token (closed with 4401 or 4403): it does not reconnect, unless
   * the page has another token by then (4401: renewed meanwhile), or until `renew`.
   */
  onRefused: (reason: string) => void
  onFrame: (frame: LiveFrame) => void
  onState: (state: LiveState, retryInMs?: number) => void
  /** First wait before reconnecting, ms. Default 500. Doubles up to maxDelayMs. */
  minDelayMs?: number
  /** Longest wait between reconnections, ms. Default 10,000. */
  maxDelayMs?: number
  /**
   * A stream silent this long is taken for dead and reconnected, ms. Default 15,000:
   * the api sends a frame at least every 5 s.
   */
  silenceMs?: number
}

/**
 * The `/api/live` WebSocket, reconnected with exponential backoff and jitter when it
 * drops. Each connection starts with a fresh snapshot from the server, so nothing
 * missed while away is left stale.
 */
export class LiveConnection {
  private socket: WebSocket | undefined
  /** The connection `renew` replaces: its frames count until the new one's snapshot. */
  private outgoing: WebSocket | undefined
  private attempt = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  private stopped = false
  private watchdog: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly opts: LiveOptions) {}

  start(): void {
    this.stopped = false
    this.connect()
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    clearTimeout(this.watchdog)
    this.socket?.close()
    this.outgoing?.close()
  }

  /**
   * Signs the stream in again with the page's token, renewed: a WebSocket cannot take a
   * new token, and the api closes it at the old one's exp. Make before break: the current
   * connection carries on until the new one's snapshot, so nothing is missed and the badge
   * stays `live`. A stream stopped by a refusal starts again.
   */
  renew(): void {
    if (this.stopped) return this.start()
    if (this.socket === undefined) {
      // Waiting to reconnect: at once, with the new token.
      clearTimeout(this.timer)
      return this.connect()
    }
    this.outgoing?.close(1000)
    this.outgoing = this.socket
    this.connect(true)
  }

  private connect(quiet = false): void {
    if (!quiet) this.opts.onState(this.attempt === 0 ? 'connecting' : 'reconnecting')
    const socket = new WebSocket(this.opts.url)
    this.socket = socket
    this.watch(socket)
    const token = this.opts.token() ?? ''
    // Signed in by message, not in the URL: URLs end up in logs.
    socket.onopen = () => socket.send(JSON.stringify({ type: 'auth', token }))
    socket.onmessage = (event: MessageEvent<string>) => {
      const frame = JSON.parse(event.data) as LiveFrame
      if (socket === this.outgoing) return this.opts.onFrame(frame)
      if (socket !== this.socket) return
      this.watch(socket)
      if (frame.type === 'snapshot') {
        this.attempt = 0
        this.opts.onState('live')
        // The new connection has caught up: the one it replaces goes.
        this.outgoing?.close(1000)
        this.outgoing = undefined
      }
      this.opts.onFrame(frame)
    }
    socket.onclose = (event: CloseEvent) => {
      if (socket === this.outgoing) {
        // Closed at its token's exp before the new connection caught up: that one goes on.
        this.outgoing = undefined
        return
      }
      if (socket !== this.socket) return
      const current = this.opts.token()
      if (event.code === UNAUTHORIZED && current !== null && current !== token) {
        // Its token expired, and the page has a fresh one (renewed meanwhile): at once.
        this.socket = undefined
        clearTimeout(this.watchdog)
        this.connect()
      } else if (event.code === UNAUTHORIZED || event.code === FORBIDDEN) {
        this.stop()
        this.opts.onRefused(event.reason)
      } else this.retry(socket)
    }
  }

  /** (Re)arms the silence watchdog: after a laptop's sleep or a NAT timeout no close comes. */
  private watch(socket: WebSocket): void {
    clearTimeout(this.watchdog)
    this.watchdog = setTimeout(() => {
      socket.close()
      this.retry(socket)
    }, this.opts.silenceMs ?? 15_000)
  }

  private retry(socket: WebSocket): void {
    if (this.socket !== socket || this.stopped) return
    this.socket = undefined
    clearTimeout(this.watchdog)
    const min = this.opts.minDelayMs ?? 500
    const max = this.opts.maxDelayMs ?? 10_000
    const delay = Math.min(max, min * 2 ** this.attempt) * (0.5 + Math.random() / 2)
    this.attempt++
    this.opts.onState('reconnecting', delay)
    this.timer = setTimeout(() => this.connect(), delay)
  }
}
