/** Milliseconds since some fixed point; injectable so that tests drive time. */
export type Clock = () => number

// One default clock for every bucket: a bound function per client cost each connection ~50 bytes.
const monotonic: Clock = () => performance.now()

/**
 * A token bucket: `ratePerS` tokens a second, at most `burst` saved up. A publish
 * takes one token; none left means the publish is dropped.
 */
export class TokenBucket {
  private tokens: number
  private last: number

  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    private readonly now: Clock = monotonic,
  ) {
    this.tokens = burst
    this.last = now()
  }

  take(): boolean {
    const t = this.now()
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.ratePerS)
    this.last = t
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

/**
 * Per-client publish limit. Excess publishes are dropped; a client that keeps going
 * over its limit (a drop at least every second) for `floodWindowMs` is flooding and
 * gets disconnected. A client that bursts once recovers well before that.
 */
export class PublishLimiter {
  private readonly bucket: TokenBucket
  private firstDropAt: number | undefined
  private lastDropAt = -Infinity

  constructor(
    ratePerS: number,
    burst: number,
    /** How long a client may stay over its limit before it is disconnected. Default 10 s. */
    private readonly floodWindowMs = 10_000,
    private readonly now: Clock = monotonic,
  ) {
    this.bucket = new TokenBucket(ratePerS, burst, now)
  }

  /** 'ok' to route, 'drop' to drop silently, 'flood' to drop and disconnect. */
  check(): 'ok' | 'drop' | 'flood' {
    const t = this.now()
    if (this.bucket.take()) {
      // A whole second without a drop means the client is back within its limit.
      if (t - this.lastDropAt > 1000) this.firstDropAt = undefined
      return 'ok'
    }
    this.lastDropAt = t
    this.firstDropAt ??= t
    return t - this.firstDropAt >= this.floodWindowMs ? 'flood' : 'drop'
  }
}
