import { and, desc, eq, gt, inArray, isNotNull, isNull, lt, lte, ne, or, sql } from 'drizzle-orm'
import type { Alert, AlertKind, AlertState } from '@skyline/schemas'
import type { FleetScope } from '../auth/principal.ts'
import type { Db } from '../db/client.ts'
import { fleetIn } from '../db/fleet-scope.ts'
import { alertWebhookOutbox, alerts } from '../db/schema.ts'
import type { Tx } from '../delivery/lifecycle.ts'
import type { OpenAlert, Opening } from './rules.ts'
import { subjectKey } from './rules.ts'

export type AlertRow = typeof alerts.$inferSelect
export type OutboxRow = typeof alertWebhookOutbox.$inferSelect

/** A row's place in the order of the list (newest first): its opening time and id. */
export interface AlertPosition {
  at: Date
  id: string
}

export interface AlertFilter {
  fleets: FleetScope
  state?: AlertState
  kind?: AlertKind
  limit: number
  after?: AlertPosition
}

const isoOrNull = (d: Date | null) => d?.toISOString() ?? null

/** The Alert payload of a row: what REST, the live stream, MQTT and the webhook carry. */
export function alertOf(row: AlertRow): Alert {
  const subject = {
    ...(row.droneId !== null && { droneId: row.droneId }),
    ...(row.stationId !== null && { stationId: row.stationId }),
    ...(row.deliveryId !== null && { deliveryId: row.deliveryId }),
    ...(row.zoneId !== null && { zoneId: row.zoneId }),
  }
  return {
    v: 1,
    ts: row.updatedAt.getTime(),
    id: row.id,
    fleetId: row.fleetId,
    kind: row.kind,
    severity: row.severity,
    state: row.state,
    subject,
    openedAt: row.openedAt.toISOString(),
    acknowledgedAt: isoOrNull(row.acknowledgedAt),
    acknowledgedBy: row.acknowledgedBy,
    resolvedAt: isoOrNull(row.resolvedAt),
    facts: row.facts,
  }
}

const openOf = (row: AlertRow): OpenAlert => ({
  id: row.id,
  fleetId: row.fleetId,
  kind: row.kind,
  subject: alertOf(row).subject,
})

/**
 * The alerts table and its webhook outbox. Reads are scoped by the reader's fleets; the
 * writes take the transaction of AlertService, the one writer, which fences the leader's.
 */
export class AlertRepository {
  constructor(private readonly db: Db) {}

  // -- reads -------------------------------------------------------------------------------

  /** Newest first (by opening), a page at a time. */
  async list(f: AlertFilter): Promise<{ alerts: AlertRow[]; next: AlertPosition | null }> {
    const { after } = f
    const rows = await this.db
      .select()
      .from(alerts)
      .where(
        and(
          fleetIn(alerts.fleetId, f.fleets),
          f.state !== undefined ? eq(alerts.state, f.state) : undefined,
          f.kind !== undefined ? eq(alerts.kind, f.kind) : undefined,
          after !== undefined
            ? or(
                lt(alerts.openedAt, after.at),
                and(eq(alerts.openedAt, after.at), lt(alerts.id, after.id)),
              )
            : undefined,
        ),
      )
      .orderBy(desc(alerts.openedAt), desc(alerts.id))
      .limit(f.limit + 1)
    const page = rows.slice(0, f.limit)
    const last = page.at(-1)
    return {
      alerts: page,
      next: rows.length > f.limit && last !== undefined ? { at: last.openedAt, id: last.id } : null,
    }
  }

  async get(id: string, fleets: FleetScope): Promise<AlertRow | undefined> {
    const [row] = await this.db
      .select()
      .from(alerts)
      .where(and(eq(alerts.id, id), fleetIn(alerts.fleetId, fleets)))
    return row
  }

  /** These alerts as they are now, of every fleet (the live stream filters per client). */
  byIds(ids: readonly string[]): Promise<AlertRow[]> {
    if (ids.length === 0) return Promise.resolve([])
    return this.db
      .select()
      .from(alerts)
      .where(inArray(alerts.id, [...ids]))
  }

  /** The alerts not resolved of `fleets` (the live stream's snapshot), newest first. */
  unresolved(fleets: FleetScope, limit = 10_000): Promise<AlertRow[]> {
    return this.db
      .select()
      .from(alerts)
      .where(and(fleetIn(alerts.fleetId, fleets), ne(alerts.state, 'resolved')))
      .orderBy(desc(alerts.openedAt), desc(alerts.id))
      .limit(limit)
  }

  /** Every alert not resolved, as the rules see them (the leader's evaluation). */
  async open(kinds?: readonly AlertKind[]): Promise<OpenAlert[]> {
    const rows = await this.db
      .select()
      .from(alerts)
      .where(
        and(
          ne(alerts.state, 'resolved'),
          kinds !== undefined ? inArray(alerts.kind, [...kinds]) : undefined,
        ),
      )
    return rows.map(openOf)
  }

  // -- writes (AlertService's) -----------------------------------------------------------------

  /**
   * Opens an alert, unless one of its kind and subject is open already (the partial
   * unique index decides: undefined then).
   */
  async insert(tx: Tx, id: string, o: Opening, at: Date): Promise<AlertRow | undefined> {
    const [row] = await tx
      .insert(alerts)
      .values({
        id,
        fleetId: o.fleetId,
        kind: o.kind,
        severity: o.severity,
        state: 'open',
        subjectKey: subjectKey(o.subject),
        droneId: o.subject.droneId ?? null,
        stationId: o.subject.stationId ?? null,
        deliveryId: o.subject.deliveryId ?? null,
        zoneId: o.subject.zoneId ?? null,
        openedAt: at,
        updatedAt: at,
        facts: o.facts,
      })
      .onConflictDoNothing()
      .returning()
    return row
  }

  /** Resolves an alert not resolved yet, its facts completed with `facts`. */
  async resolve(
    tx: Tx,
    id: string,
    facts: Record<string, unknown>,
    at: Date,
  ): Promise<AlertRow | undefined> {
    const [row] = await tx
      .update(alerts)
      .set({
        state: 'resolved',
        resolvedAt: at,
        updatedAt: at,
        facts: sql`${alerts.facts} || ${JSON.stringify(facts)}::jsonb`,
      })
      .where(and(eq(alerts.id, id), ne(alerts.state, 'resolved')))
      .returning()
    return row
  }

  /** Acknowledges an open alert of `fleets`: undefined if there is none such. */
  async acknowledge(
    tx: Tx,
    id: string,
    by: string,
    fleets: FleetScope,
    at: Date,
  ): Promise<AlertRow | undefined> {
    const [row] = await tx
      .update(alerts)
      .set({ state: 'acknowledged', acknowledgedAt: at, acknowledgedBy: by, updatedAt: at })
      .where(and(eq(alerts.id, id), eq(alerts.state, 'open'), fleetIn(alerts.fleetId, fleets)))
      .returning()
    return row
  }

  /** Whether each of these deliveries has had a `route_blocked` alert (any state). */
  async routeBlockedAlerted(deliveryIds: readonly string[]): Promise<Set<string>> {
    if (deliveryIds.length === 0) return new Set()
    const rows = await this.db
      .select({ deliveryId: alerts.deliveryId })
      .from(alerts)
      .where(and(eq(alerts.kind, 'route_blocked'), inArray(alerts.deliveryId, [...deliveryIds])))
    return new Set(rows.map((r) => r.deliveryId!))
  }

  // -- the webhook's outbox --------------------------------------------------------------------

  /** A change to send, in the change's own transaction. */
  async enqueue(tx: Tx, alert: Alert, at: Date): Promise<void> {
    await tx.insert(alertWebhookOutbox).values({
      alertId: alert.id,
      fleetId: alert.fleetId,
      body: JSON.stringify(alert),
      nextAttemptAt: at,
      createdAt: at,
    })
  }

  /** Rows due for an attempt at `now`, oldest first. */
  due(now: Date, limit: number): Promise<OutboxRow[]> {
    return this.db
      .select()
      .from(alertWebhookOutbox)
      .where(
        and(
          isNull(alertWebhookOutbox.deliveredAt),
          isNull(alertWebhookOutbox.deadAt),
          lte(alertWebhookOutbox.nextAttemptAt, now),
        ),
      )
      .orderBy(alertWebhookOutbox.nextAttemptAt, alertWebhookOutbox.id)
      .limit(limit)
  }

  /** When the next row waiting falls due, if any does. */
  async nextDue(): Promise<Date | undefined> {
    const [row] = await this.db
      .select({ at: alertWebhookOutbox.nextAttemptAt })
      .from(alertWebhookOutbox)
      .where(and(isNull(alertWebhookOutbox.deliveredAt), isNull(alertWebhookOutbox.deadAt)))
      .orderBy(alertWebhookOutbox.nextAttemptAt)
      .limit(1)
    return row?.at
  }

  /** An attempt's outcome: delivered, to try again at `retryAt`, or dead. */
  async attempted(
    tx: Tx,
    id: number,
    outcome:
      { delivered: Date } | { error: string; retryAt: Date } | { error: string; deadAt: Date },
  ): Promise<void> {
    await tx
      .update(alertWebhookOutbox)
      .set({
        attempts: sql`${alertWebhookOutbox.attempts} + 1`,
        ...('delivered' in outcome && { deliveredAt: outcome.delivered, lastError: null }),
        ...('retryAt' in outcome && { nextAttemptAt: outcome.retryAt, lastError: outcome.error }),
        ...('deadAt' in outcome && { deadAt: outcome.deadAt, lastError: outcome.error }),
      })
      .where(eq(alertWebhookOutbox.id, id))
  }

  /** Outbox rows of an alert (tests, and whoever looks at dead letters). */
  outboxOf(alertId: string): Promise<OutboxRow[]> {
    return this.db
      .select()
      .from(alertWebhookOutbox)
      .where(eq(alertWebhookOutbox.alertId, alertId))
      .orderBy(alertWebhookOutbox.id)
  }

  /**
   * The dead letters of `fleets`: rows the webhook gave up on, the latest given up first, a
   * page at a time (`after`: the last of the previous page, by `dead_at` and id). Rare, and
   * the outbox is pruned of what was delivered: no index of their own.
   */
  async deadLetters(f: {
    fleets: FleetScope
    limit: number
    after?: { at: Date; id: number }
  }): Promise<{ rows: OutboxRow[]; next: { at: Date; id: number } | null }> {
    const { after } = f
    const rows = await this.db
      .select()
      .from(alertWebhookOutbox)
      .where(
        and(
          isNotNull(alertWebhookOutbox.deadAt),
          fleetIn(alertWebhookOutbox.fleetId, f.fleets),
          after !== undefined
            ? or(
                lt(alertWebhookOutbox.deadAt, after.at),
                and(eq(alertWebhookOutbox.deadAt, after.at), lt(alertWebhookOutbox.id, after.id)),
              )
            : undefined,
        ),
      )
      .orderBy(desc(alertWebhookOutbox.deadAt), desc(alertWebhookOutbox.id))
      .limit(f.limit + 1)
    const page = rows.slice(0, f.limit)
    const last = page.at(-1)
    return {
      rows: page,
      next: rows.length > f.limit && last?.deadAt != null ? { at: last.deadAt, id: last.id } : null,
    }
  }

  /** Delivered rows older than `before` go (the outbox is not a log). */
  async pruneDelivered(before: Date): Promise<void> {
    await this.db
      .delete(alertWebhookOutbox)
      .where(and(gt(alertWebhookOutbox.id, 0), lt(alertWebhookOutbox.deliveredAt, before)))
  }
}
