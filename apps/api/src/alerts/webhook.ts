import { createHmac } from 'node:crypto'
import type { Db } from '../db/client.ts'
import type { Tx } from '../delivery/lifecycle.ts'
import type { AlertRepository, OutboxRow } from './repository.ts'

/** The header that carries the signature (Stripe's scheme: `t=<unix s>,v1=<hex>`). */
export const SIGNATURE_HEADER = 'skyline-signature'
/** The outbox row's id: the same on every attempt of one change (receivers de-duplicate on it). */
export const DELIVERY_HEADER = 'skyline-delivery'

/**
 * The signature of a webhook request: HMAC-SHA256 with the shared secret over
 * `"{t}.{body}"`, hex, where `t` is the time of signing in Unix seconds; sent as
 * `Skyline-Signature: t={t},v1={hex}`. The time in the signed text lets a receiver refuse
 * a replay of an old request (Stripe's webhook scheme).
 */
export function sign(secret: string, body: string, unixS: number): string {
  const hex = createHmac('sha256', secret).update(`${unixS}.${body}`).digest('hex')
  return `t=${unixS},v1=${hex}`
}

/** How long before attempt `n + 1` after `n` failed ones (n ≥ 1), ms: doubling from `baseMs`, at most `maxMs`. */
export function backoffMs(failed: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, failed - 1))
}

export interface WebhookOptions {
  url: string
  secret: string
  /** Attempts of one change at most; after the last it is dead (ALERT_WEBHOOK_MAX_ATTEMPTS). */
  maxAttempts: number
  /** Wait after the first failure, ms; doubling (ALERT_WEBHOOK_BACKOFF_MS). */
  backoffMs: number
  /** Longest wait between attempts, ms (ALERT_WEBHOOK_BACKOFF_MAX_MS). */
  backoffMaxMs: number
  /** An attempt without an answer this long fails, ms (ALERT_WEBHOOK_TIMEOUT_MS). */
  timeoutMs: number
  /** Refuses a transaction of the leader's unless this instance still leads. */
  fence: (tx: Tx) => Promise<void>
  now?: () => Date
  /** Told each outcome (metrics, logs). */
  outcome?: (o: { kind: 'delivered' | 'retry' | 'dead'; row: OutboxRow; error?: string }) => void
}

/** Rows sent per pass at most. */
const BATCH = 50

/**
 * Sends the alerts' outbox to ALERT_WEBHOOK_URL, on the leader only: each row a JSON POST
 * (the Alert payload) signed with ALERT_WEBHOOK_SECRET. A 2xx delivers it; anything else
 * (another status, no answer in time, a refused connection) is tried again after a
 * doubling wait, and after ALERT_WEBHOOK_MAX_ATTEMPTS it is dead, with the last error:
 * the dead-letter record. At least once: a row is marked after its request answered, so
 * a crash or a takeover in between sends it again (with the same Skyline-Delivery id).
 * Rows wait in the database: a restart loses none.
 */
export class WebhookSender {
  private readonly now: () => Date
  private running: Promise<void> | undefined
  private again = false

  constructor(
    private readonly db: Db,
    private readonly repository: AlertRepository,
    private readonly o: WebhookOptions,
  ) {
    this.now = o.now ?? (() => new Date())
  }

  /** Sends what is due, one pass at a time (a call during one runs another after it). */
  pass(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true
      return this.running
    }
    this.running = (async () => {
      do {
        this.again = false
        const rows = await this.repository.due(this.now(), BATCH)
        for (const row of rows) await this.attempt(row)
        if (rows.length === BATCH) this.again = true
      } while (this.again)
    })().finally(() => (this.running = undefined))
    return this.running
  }

  /** Resolves once the pass under way, if any, is done. */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve()
  }

  /** When the next row falls due, if any waits. */
  nextDue(): Promise<Date | undefined> {
    return this.repository.nextDue()
  }

  private async attempt(row: OutboxRow): Promise<void> {
    const error = await this.post(row)
    const at = this.now()
    const failed = row.attempts + 1
    const outcome =
      error === undefined
        ? { delivered: at }
        : failed >= this.o.maxAttempts
          ? { error, deadAt: at }
          : {
              error,
              retryAt: new Date(
                at.getTime() + backoffMs(failed, this.o.backoffMs, this.o.backoffMaxMs),
              ),
            }
    await this.db.transaction(async (tx) => {
      await this.o.fence(tx)
      await this.repository.attempted(tx, row.id, outcome)
    })
    this.o.outcome?.({
      kind: 'delivered' in outcome ? 'delivered' : 'deadAt' in outcome ? 'dead' : 'retry',
      row,
      ...(error !== undefined && { error }),
    })
  }

  /** One request: undefined when the receiver took it (2xx), else why not. */
  private async post(row: OutboxRow): Promise<string | undefined> {
    try {
      const res = await fetch(this.o.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: sign(
            this.o.secret,
            row.body,
            Math.floor(this.now().getTime() / 1000),
          ),
          [DELIVERY_HEADER]: String(row.id),
        },
        body: row.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.o.timeoutMs),
      })
      // The answer's body is not read: drained so that the connection is reused.
      await res.body?.cancel().catch(() => {})
      return res.ok ? undefined : `HTTP ${res.status}`
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } }
      return e.name === 'TimeoutError'
        ? `no answer within ${this.o.timeoutMs} ms`
        : `${e.cause?.code ?? e.name}: ${e.message}`.slice(0, 500)
    }
  }
}
