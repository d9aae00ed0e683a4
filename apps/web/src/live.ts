import type { LiveFrame } from '@skyline/schemas'

export type LiveState = 'connecting' | 'live' | 'reconnecting'

/** Close codes of a stream that refused the token (ARCHITECTURE.md "Live stream"). */
const UNAUTHORIZED = 4401
const FORBIDDEN = 4403

export interface LiveOptions {
  url: string
  /** The token the stream signs in with (its first message); read at each connection. */
  token: () => string | null
  /** The stream refused the token (closed with 4401 or 4403): it does not reconnect. */
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
  }

  private connect(): void {
    this.opts.onState(this.attempt === 0 ? 'connecting' : 'reconnecting')
    const socket = new WebSocket(this.opts.url)
    this.socket = socket
    this.watch(socket)
    // Signed in by message, not in the URL: URLs end up in logs.
    socket.onopen = () =>
      socket.send(JSON.stringify({ type: 'auth', token: this.opts.token() ?? '' }))
    socket.onmessage = (event: MessageEvent<string>) => {
      this.watch(socket)
      const frame = JSON.parse(event.data) as LiveFrame
      if (frame.type === 'snapshot') {
        this.attempt = 0
        this.opts.onState('live')
      }
      this.opts.onFrame(frame)
    }
    socket.onclose = (event: CloseEvent) => {
      if (event.code === UNAUTHORIZED || event.code === FORBIDDEN) {
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
