import { randomUUID } from 'node:crypto'
import type { Alert } from '@skyline/schemas'
import type { FleetScope } from '../auth/principal.ts'
import type { Db } from '../db/client.ts'
import type { Tx } from '../delivery/lifecycle.ts'
import { ApiError, notFound } from '../errors.ts'
import { alertOf } from './repository.ts'
import type { AlertRepository } from './repository.ts'
import type { Decisions } from './rules.ts'

/** Told each alert this instance opened, acknowledged or resolved, once committed. */
export type AlertListener = (alert: Alert) => void

export interface AlertServiceOptions {
  /** Refuses a transaction of the leader's unless this instance still leads (cluster/lease.ts). */
  fence: (tx: Tx) => Promise<void>
  /** Whether changes go to the webhook's outbox (ALERT_WEBHOOK_URL is set). */
  webhook: boolean
  now?: () => Date
  /** A listener threw: reported, and the others are still told. */
  onListenerError?: (err: unknown, alert: Alert) => void
}

/**
 * The one writer of alerts (docs/architecture.md "Alerts"). The leader's evaluation gives
 * it what to open and resolve (`apply`, one fenced transaction a round); an operator
 * acknowledges through it (any instance). Each change that commits is written to the
 * webhook's outbox in the same transaction, then told to the listeners (the live stream,
 * the change feed, MQTT, metrics), rather than each writer knowing each reader.
 */
export class AlertService {
  private readonly listeners = new Set<AlertListener>()
  private readonly now: () => Date

  constructor(
    readonly repository: AlertRepository,
    private readonly db: Db,
    private readonly o: AlertServiceOptions,
  ) {
    this.now = o.now ?? (() => new Date())
  }

  /** Returns the way to unsubscribe. */
  onChange(listener: AlertListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /**
   * Opens and resolves what the rules decided, in one transaction of the leader's. An
   * opening whose kind and subject are open already (another round got there first) is
   * left out: `conflicts` counts them.
   */
  async apply(d: Decisions): Promise<{ changed: Alert[]; conflicts: number }> {
    if (d.open.length === 0 && d.resolve.length === 0) return { changed: [], conflicts: 0 }
    const at = this.now()
    let conflicts = 0
    const changed = await this.db.transaction(async (tx) => {
      await this.o.fence(tx)
      const out: Alert[] = []
      for (const r of d.resolve) {
        const row = await this.repository.resolve(tx, r.id, r.facts, at)
        if (row !== undefined) out.push(alertOf(row))
      }
      for (const o of d.open) {
        const row = await this.repository.insert(tx, randomUUID(), o, at)
        if (row === undefined) conflicts++
        else out.push(alertOf(row))
      }
      if (this.o.webhook) for (const alert of out) await this.repository.enqueue(tx, alert, at)
      return out
    })
    for (const alert of changed) this.tell(alert)
    return { changed, conflicts }
  }

  /**
   * An operator acknowledges an alert of `fleets`: `open` → `acknowledged`. Again on an
   * acknowledged one changes nothing; a resolved one is 409; one outside `fleets` is
   * not found.
   */
  async acknowledge(id: string, by: string, fleets: FleetScope): Promise<Alert> {
    const at = this.now()
    const row = await this.db.transaction(async (tx) => {
      const updated = await this.repository.acknowledge(tx, id, by, fleets, at)
      if (updated !== undefined && this.o.webhook)
        await this.repository.enqueue(tx, alertOf(updated), at)
      return updated
    })
    if (row !== undefined) {
      const alert = alertOf(row)
      this.tell(alert)
      return alert
    }
    const current = await this.repository.get(id, fleets)
    if (current === undefined) throw notFound('alert', id)
    if (current.state === 'resolved')
      throw new ApiError(409, 'already_resolved', `alert ${id} is resolved: nothing to acknowledge`)
    return alertOf(current)
  }

  private tell(alert: Alert): void {
    for (const listener of this.listeners) {
      try {
        listener(alert)
      } catch (err) {
        this.o.onListenerError?.(err, alert)
      }
    }
  }
}
