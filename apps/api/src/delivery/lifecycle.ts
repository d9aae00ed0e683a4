import { randomUUID } from 'node:crypto'
import {
  and,
  eq,
  exists,
  gt,
  inArray,
  isNotNull,
  isNull,
  lt,
  ne,
  notExists,
  notInArray,
  or,
  sql,
} from 'drizzle-orm'
import { alias } from 'drizzle-orm/pg-core'
import type { SQL } from 'drizzle-orm'
import { FINISHED_STATUSES, buildTopic } from '@skyline/schemas'
import type { DeliveryRequest, DeliveryStatus, DroneCommand, DroneEvent } from '@skyline/schemas'
import { inScope } from '../auth/principal.ts'
import type { FleetScope } from '../auth/principal.ts'
import type { Db } from '../db/client.ts'
import { deliveries, deliveryEvents, drones, stations } from '../db/schema.ts'
import { ApiError, notFound } from '../errors.ts'
import { distanceM } from '../geo.ts'
import type { DeliveryChanges } from './changes.ts'
import { EtaEstimator } from './eta.ts'
import type { EtaInput } from './eta.ts'
import { promisedAt } from './promise.ts'
import type { PromiseDrone } from './promise.ts'
import { ACTIVE, LOADED, LOST_REASONS, RANK, UNDERWAY, allowed } from './transitions.ts'
import type { LostReason } from './transitions.ts'

export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]
export type DeliveryRow = typeof deliveries.$inferSelect
/** Publishes a command to a drone (QoS 2); resolves once the broker has it. */
export type SendCommand = (topic: string, command: DroneCommand) => Promise<void>

/** A stop of a delivery as the drone is told it. */
interface Stop {
  id: string
  lat: number
  lon: number
}

interface Move {
  id: string
  /** The statuses it may be in; every one must allow `to` (transitions.ts). */
  from: readonly DeliveryStatus[]
  to: DeliveryStatus
  /** Columns set with the status (a value, or SQL computed from the row). */
  set?: { [K in keyof typeof deliveries.$inferInsert]?: (typeof deliveries.$inferInsert)[K] | SQL }
  /** A further condition on the row: what the caller read must still hold. */
  where?: SQL | undefined
  /** The event row's time and detail. */
  at: Date
  detail: string | null
  /** `updatedAt`; default the api's now. */
  updatedAt?: Date
}

export interface ReconcileOptions {
  /** A delivery whose drone has not been heard for this long is its drone's no more, s. */
  lostAfterS: number
  /**
   * A delivery whose drone, heard since its last transition, reports a state that cannot
   * be serving it, is abandoned once that transition is this old, s.
   */
  abandonAfterS: number
  /**
   * Since when the ingest has been hearing the broker without a break (undefined: it is
   * not). A drone cannot be judged silent over a time nobody was listening.
   */
  listeningSince: Date | undefined
}

/** What reconciliation did to one delivery. */
export interface Reconciled {
  id: string
  droneId: string | null
  reason: LostReason
  status: 'requested' | 'failed'
}

/**
 * The delivery lifecycle's one owner: the only code that changes a delivery's status.
 * Every move is checked against the table of transitions.ts, is one transaction with its
 * `delivery_events` row, and is told to `changes` once committed (the moves made inside
 * the ingest's batch transaction are told by the ingest after that commits). The
 * commands a move implies (assign, cancel) go to the drone from here, after the commit.
 */
export class DeliveryLifecycle {
  readonly eta = new EtaEstimator()

  constructor(
    private readonly db: Db,
    readonly changes: DeliveryChanges,
    private readonly send: SendCommand,
    private readonly log: { warn(obj: object, msg: string): void },
    private readonly now: () => Date = () => new Date(),
    /**
     * Checks, inside a transaction of the dispatcher's or the reconciliation's, that this
     * instance still leads (cluster/lease.ts): a paused old leader's moves are refused.
     */
    private readonly fence: (tx: Tx) => Promise<void> = async () => {},
  ) {
    // A delivery's ETA memory goes once the move that ended its flight is committed: a
    // batch rolled back and written again still finds the history its arrival scores.
    changes.subscribe((id) => {
      if (this.flightsOver.delete(id)) this.eta.forget(id)
    })
  }

  /** Deliveries moved (in a transaction not yet known to be committed) out of flight. */
  private readonly flightsOver = new Set<string>()

  // -- operators (REST) ------------------------------------------------------------

  /** (new) → requested, by an operator. */
  async request(input: {
    fleetId: string
    pickupStationId: string
    dropoffStationId: string
    payloadKg: number
  }): Promise<DeliveryRow> {
    if (input.pickupStationId === input.dropoffStationId) {
      throw new ApiError(400, 'bad_request', 'pick-up and drop-off must be different stations')
    }
    const known = await this.db
      .select({ id: stations.id })
      .from(stations)
      .where(
        and(
          eq(stations.fleetId, input.fleetId),
          inArray(stations.id, [input.pickupStationId, input.dropoffStationId]),
        ),
      )
    for (const id of [input.pickupStationId, input.dropoffStationId]) {
      if (!known.some((k) => k.id === id))
        throw new ApiError(400, 'unknown_station', `station ${id} is not in fleet ${input.fleetId}`)
    }
    const now = this.now()
    const row = await this.db.transaction(async (tx) => {
      const [created] = await tx
        .insert(deliveries)
        .values({
          id: randomUUID(),
          ...input,
          status: 'requested',
          source: 'api',
          requestedAt: now,
          updatedAt: now,
        })
        .returning()
      await tx
        .insert(deliveryEvents)
        .values({ deliveryId: created!.id, status: 'requested', at: now, detail: 'operator' })
      return created!
    })
    this.changes.emit(row.id, row.status)
    return row
  }

  /**
   * requested … arrived → cancelled, by an operator; so is one failed as lost or
   * abandoned, whose drone may come back with it. Its drone, if any, is told. Only a
   * delivery of one of `fleets` (an operator's; default every fleet): one of another
   * fleet is not found, as for a read (a delivery never changes fleet).
   */
  async cancel(id: string, fleets: FleetScope = '*'): Promise<DeliveryRow> {
    if (fleets !== '*') {
      const [d] = await this.db
        .select({ fleetId: deliveries.fleetId })
        .from(deliveries)
        .where(eq(deliveries.id, id))
      if (d === undefined || !inScope(fleets, d.fleetId)) throw notFound('delivery', id)
    }
    const now = this.now()
    const row = await this.db.transaction((tx) =>
      this.move(tx, {
        id,
        // Whatever step the drone has reached meanwhile, it is still cancellable.
        from: ['requested', ...ACTIVE, 'failed'],
        to: 'cancelled',
        set: { cancelledAt: now },
        where: or(
          ne(deliveries.status, 'failed'),
          inArray(deliveries.failureReason, [...LOST_REASONS]),
        ),
        at: now,
        detail: 'operator',
      }),
    )
    if (row === undefined) {
      const [current] = await this.db
        .select({ status: deliveries.status })
        .from(deliveries)
        .where(eq(deliveries.id, id))
      if (current === undefined) throw notFound('delivery', id)
      throw new ApiError(409, 'not_cancellable', `delivery ${id} is ${current.status}`)
    }
    this.changes.emit(row.id, row.status)
    if (row.droneId !== null) await this.tellCancel(row.fleetId, row.droneId, row.id)
    return row
  }

  /** A transaction only the leading instance may commit. */
  private leaderTx<T>(run: (tx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) => {
      await this.fence(tx)
      return run(tx)
    })
  }

  // -- the dispatcher ----------------------------------------------------------------

  /**
   * requested → assigned to `drone`, if nobody declined it since the dispatcher read
   * `d` (`declined_by` only grows), with the ETA promised from where the drone is
   * (promise.ts); then the drone gets `delivery.assign`. False when the delivery moved
   * meanwhile.
   */
  async assign(
    d: DeliveryRow,
    drone: PromiseDrone & { id: string },
    pickup: Stop,
    dropoff: Stop,
  ): Promise<boolean> {
    const now = this.now()
    const droneId = drone.id
    const row = await this.leaderTx((tx) =>
      this.move(tx, {
        id: d.id,
        from: ['requested'],
        to: 'assigned',
        set: {
          droneId,
          assignedAt: now,
          distanceM: distanceM(pickup, dropoff),
          // The time promised: what `delivery_late` judges the flight by (alerts).
          promisedAt: promisedAt(now, drone, pickup, dropoff),
          routeBlockedSince: null,
        },
        where: sql`jsonb_array_length(${deliveries.declinedBy}) = ${d.declinedBy.length}`,
        at: now,
        detail: `drone ${droneId}`,
      }),
    )
    if (row === undefined) return false
    this.changes.emit(row.id, row.status)
    const stop = (s: Stop) => ({ stationId: s.id, lat: s.lat, lon: s.lon })
    await this.send(topicOf(d.fleetId, droneId), {
      v: 1,
      ts: now.getTime(),
      id: randomUUID(),
      type: 'delivery.assign',
      deliveryId: d.id,
      pickup: stop(pickup),
      dropoff: stop(dropoff),
    })
    return true
  }

  /** requested → failed, by the dispatcher: it cannot be flown (`detail`: default the reason). */
  async fail(id: string, reason: string, detail: string = reason): Promise<void> {
    const now = this.now()
    const row = await this.leaderTx((tx) =>
      this.move(tx, {
        id,
        from: ['requested'],
        to: 'failed',
        set: { failedAt: now, failureReason: reason },
        at: now,
        detail,
      }),
    )
    if (row !== undefined) this.changes.emit(row.id, row.status)
  }

  /**
   * Whether a requested delivery's route crosses an active no-fly zone, by the dispatcher:
   * `routeBlockedSince` is set when it starts to (kept while it goes on), cleared when it
   * no longer does. Not a move: it stays requested (and no event row); told on `changes`
   * when it flips, without a status (no new dispatch round for it). Returns since when
   * it is blocked (undefined: not blocked, or no longer requested).
   */
  async routeBlocked(d: DeliveryRow, blocked: boolean): Promise<Date | undefined> {
    if (blocked === (d.routeBlockedSince !== null)) return d.routeBlockedSince ?? undefined
    const now = this.now()
    const [row] = await this.leaderTx((tx) =>
      tx
        .update(deliveries)
        .set({ routeBlockedSince: blocked ? now : null, updatedAt: now })
        .where(and(eq(deliveries.id, d.id), eq(deliveries.status, 'requested')))
        .returning(),
    )
    if (row === undefined) return undefined
    this.changes.emit(row.id)
    return row.routeBlockedSince ?? undefined
  }

  /**
   * assigned → requested for assignments made before `cutoff` and still not accepted:
   * the drone joins `declined_by` and is told to cancel.
   */
  async requeueUnaccepted(cutoff: Date): Promise<void> {
    const late = await this.db
      .select({ id: deliveries.id, fleetId: deliveries.fleetId, droneId: deliveries.droneId })
      .from(deliveries)
      .where(and(eq(deliveries.status, 'assigned'), lt(deliveries.assignedAt, cutoff)))
    for (const d of late) {
      if (d.droneId === null) continue
      const droneId = d.droneId
      const row = await this.leaderTx((tx) =>
        this.giveBack(tx, d.id, ['assigned'], droneId, 'no answer in time', true, this.now()),
      )
      if (row === undefined) continue // a late acceptance won
      this.changes.emit(row.id, row.status)
      await this.tellCancel(d.fleetId, droneId, d.id)
    }
  }

  // -- the ingest: facts from devices, inside the batch's transaction ------------------

  /** (new) → requested, by a station; a redelivered request changes nothing. */
  async requestedByStation(
    tx: Tx,
    fleetId: string,
    stationId: string,
    msg: DeliveryRequest,
    receivedAt: Date,
  ): Promise<void> {
    const requestedAt = new Date(msg.ts)
    const inserted = await tx
      .insert(deliveries)
      .values({
        id: msg.id,
        fleetId,
        status: 'requested',
        source: 'station',
        pickupStationId: stationId,
        dropoffStationId: msg.dropoffStationId,
        payloadKg: msg.payloadKg,
        requestedAt,
        updatedAt: receivedAt,
      })
      .onConflictDoNothing()
      .returning({ id: deliveries.id })
    if (inserted.length > 0)
      await tx
        .insert(deliveryEvents)
        .values({ deliveryId: msg.id, status: 'requested', at: requestedAt })
  }

  /**
   * What a drone's event means for the delivery it names. Only the delivery's own drone
   * moves it, only forward; a refusal gives it back; a drone that comes back to a
   * delivery failed as lost or abandoned carries on with it.
   */
  async droneEvent(
    tx: Tx,
    fleetId: string,
    droneId: string,
    event: DroneEvent,
    receivedAt: Date,
  ): Promise<void> {
    if (event.deliveryId === undefined) return
    const id = event.deliveryId
    const [d] = await tx
      .select({
        status: deliveries.status,
        droneId: deliveries.droneId,
        etaAt: deliveries.etaAt,
        failureReason: deliveries.failureReason,
      })
      .from(deliveries)
      .where(and(eq(deliveries.id, id), eq(deliveries.fleetId, fleetId)))
      // Locked until commit: an operator's cancel or the dispatcher cannot slip in between.
      .for('update')
    // Another drone's word on it (one it was taken from) changes nothing.
    if (d === undefined || d.droneId !== droneId) return
    if (
      event.type === 'delivery.failed' &&
      d.status === 'assigned' &&
      event.detail !== 'cancelled'
    ) {
      await this.giveBack(
        tx,
        id,
        ['assigned'],
        droneId,
        event.detail ?? 'refused',
        true,
        receivedAt,
      )
      return
    }
    const next = forward(event, d.status)
    if (next === null) return
    const resumed = d.status === 'failed' && LOST_REASONS.includes(d.failureReason as LostReason)
    if (!resumed && RANK[next.status] <= RANK[d.status]) return
    if (!allowed(d.status, next.status)) return
    const at = new Date(event.ts)
    const moved = await this.move(tx, {
      id,
      from: [d.status],
      to: next.status,
      set: {
        ...(next.column !== undefined && { [next.column]: at }),
        ...(next.status === 'failed' && { failureReason: event.detail ?? 'failed' }),
        ...(resumed && { failedAt: null, failureReason: null }),
        // How far off the last ETA was, seconds (positive: it arrived early).
        ...(next.status === 'arrived' &&
          d.etaAt !== null && { etaErrorS: (d.etaAt.getTime() - at.getTime()) / 1000 }),
      },
      at,
      detail: resumed
        ? `drone ${droneId} is back: ${event.detail ?? event.type}`
        : (event.detail ?? null),
      updatedAt: receivedAt,
    })
    // Its ETAs at the horizons a customer is scored at, against this arrival.
    if (moved?.status === 'arrived') await this.eta.arrived(tx, id, at)
  }

  /** Positions naming deliveries: their ETAs (not a status: no event row). */
  positions(tx: Tx, points: EtaInput[]): Promise<void> {
    return this.eta.update(tx, points)
  }

  // -- reconciliation ------------------------------------------------------------------

  /**
   * Nothing stays in flight without a drone working on it. A delivery past `assigned`
   * whose drone is lost (not heard for `lostAfterS`, or unknown) or has abandoned it (it
   * reports no mission or another one) goes back to `requested` if the payload is not on
   * board yet (its drone is told to cancel), and fails otherwise, with the reason.
   */
  async reconcile(o: ReconcileOptions): Promise<Reconciled[]> {
    const now = this.now()
    const lostCutoff = new Date(now.getTime() - o.lostAfterS * 1000)
    const abandonCutoff = new Date(now.getTime() - o.abandonAfterS * 1000)
    const other = alias(deliveries, 'other')
    const canJudgeLoss = o.listeningSince !== undefined && o.listeningSince <= lostCutoff
    const lost = or(isNull(drones.id), lt(drones.lastSeenAt, lostCutoff))
    const abandoned = and(
      eq(drones.online, true),
      ne(drones.state, 'stale'),
      // Heard since its last transition, which is old enough for any report in flight.
      // Over the drop-off a drone may wait docked before it completes: that gets as long
      // as a drone may be silent.
      gt(drones.lastSeenAt, deliveries.updatedAt),
      or(
        and(ne(deliveries.status, 'arrived'), lt(deliveries.updatedAt, abandonCutoff)),
        and(eq(deliveries.status, 'arrived'), lt(deliveries.updatedAt, lostCutoff)),
      ),
      or(
        // Idle or charging is having no mission, whatever delivery its last point named
        // (a restarted simulator's points may be older than its last ones, and move
        // nothing but the status).
        inArray(drones.state, ['idle', 'charging']),
        and(
          isNotNull(drones.deliveryId),
          ne(drones.deliveryId, deliveries.id),
          // Not one already taken from it or over: a restarted time-scaled simulator's
          // points are older than its last run's, so the drone's last point may name what
          // it flew before, for as long as its new clock takes to catch up.
          notExists(
            this.db
              .select({ one: sql`1` })
              .from(other)
              .where(
                and(
                  eq(other.fleetId, drones.fleetId),
                  eq(other.id, drones.deliveryId),
                  or(
                    notInArray(other.status, [...ACTIVE]),
                    isNull(other.droneId),
                    ne(other.droneId, drones.id),
                  ),
                ),
              ),
          ),
        ),
      ),
    )
    // Judged again as each is moved: its drone may have been heard since the round read it.
    const itsDrone = and(eq(drones.fleetId, deliveries.fleetId), eq(drones.id, deliveries.droneId))
    const stillJudged = or(
      canJudgeLoss
        ? notExists(
            this.db
              .select({ one: sql`1` })
              .from(drones)
              .where(itsDrone),
          )
        : undefined,
      exists(
        this.db
          .select({ one: sql`1` })
          .from(drones)
          .where(
            and(
              itsDrone,
              or(canJudgeLoss ? lt(drones.lastSeenAt, lostCutoff) : undefined, abandoned),
            ),
          ),
      ),
    )
    const candidates = await this.db
      .select({
        id: deliveries.id,
        fleetId: deliveries.fleetId,
        status: deliveries.status,
        droneId: deliveries.droneId,
        lastSeenAt: drones.lastSeenAt,
      })
      .from(deliveries)
      .leftJoin(
        drones,
        and(eq(drones.fleetId, deliveries.fleetId), eq(drones.id, deliveries.droneId)),
      )
      .where(
        and(inArray(deliveries.status, UNDERWAY), or(canJudgeLoss ? lost : undefined, abandoned)),
      )
      .limit(1_000)
    const done: Reconciled[] = []
    for (const c of candidates) {
      const reason: LostReason =
        canJudgeLoss && (c.lastSeenAt === null || c.lastSeenAt < lostCutoff)
          ? 'drone_lost'
          : 'abandoned'
      const detail = `drone ${c.droneId ?? 'unknown'}: ${reason}`
      const loaded = LOADED.includes(c.status)
      const row = await this.leaderTx((tx) =>
        loaded
          ? this.move(tx, {
              id: c.id,
              from: [c.status],
              to: 'failed',
              set: { failedAt: now, failureReason: reason },
              where: and(
                c.droneId !== null ? eq(deliveries.droneId, c.droneId) : undefined,
                stillJudged,
              ),
              at: now,
              detail,
            })
          : this.giveBack(tx, c.id, [c.status], c.droneId, reason, false, now, stillJudged),
      )
      if (row === undefined) continue // its drone spoke, or was heard, meanwhile
      this.changes.emit(row.id, row.status)
      done.push({ id: c.id, droneId: c.droneId, reason, status: loaded ? 'failed' : 'requested' })
      // Not loaded: another drone will fly it, so this one must not, should it come back.
      if (!loaded && c.droneId !== null) await this.tellCancel(c.fleetId, c.droneId, c.id)
    }
    return done
  }

  // -- the moves -------------------------------------------------------------------------

  /** Back to requested, from the drone it was given to; `declined`: not to be asked again. */
  private giveBack(
    tx: Tx,
    id: string,
    from: readonly DeliveryStatus[],
    droneId: string | null,
    why: string,
    declined: boolean,
    at: Date,
    judged?: SQL,
  ): Promise<DeliveryRow | undefined> {
    return this.move(tx, {
      id,
      from,
      to: 'requested',
      set: {
        droneId: null,
        assignedAt: null,
        etaAt: null,
        promisedAt: null,
        ...(declined &&
          droneId !== null && {
            declinedBy: sql`${deliveries.declinedBy} || ${JSON.stringify([droneId])}::jsonb`,
          }),
      },
      // Only while it is still that drone's: its own word since wins.
      where: and(
        droneId !== null ? eq(deliveries.droneId, droneId) : isNull(deliveries.droneId),
        judged,
      ),
      at,
      detail: `drone ${droneId ?? 'unknown'}: ${why}`,
      updatedAt: at,
    })
  }

  /**
   * The one statement that changes a status: only from the statuses given (so a move
   * made meanwhile wins), and with its event row in the same transaction.
   */
  private async move(tx: Tx, m: Move): Promise<DeliveryRow | undefined> {
    for (const from of m.from)
      if (!allowed(from, m.to)) throw new Error(`not a delivery transition: ${from} → ${m.to}`)
    const [row] = await tx
      .update(deliveries)
      .set({ ...m.set, status: m.to, updatedAt: m.updatedAt ?? this.now() })
      .where(and(eq(deliveries.id, m.id), inArray(deliveries.status, [...m.from]), m.where))
      .returning()
    if (row === undefined) return undefined
    await tx
      .insert(deliveryEvents)
      .values({ deliveryId: m.id, status: m.to, at: m.at, detail: m.detail })
    // Its ETA's memory goes when it finishes or goes back to the queue (its flight is
    // over), once that is committed and told (the constructor's listener).
    if (m.to === 'requested' || (FINISHED_STATUSES as readonly string[]).includes(m.to))
      this.flightsOver.add(m.id)
    return row
  }

  private async tellCancel(fleetId: string, droneId: string, deliveryId: string): Promise<void> {
    const topic = topicOf(fleetId, droneId)
    // The move is committed; telling the drone is best effort (queued for it while away).
    await this.send(topic, {
      v: 1,
      ts: this.now().getTime(),
      id: randomUUID(),
      type: 'cancel',
      deliveryId,
    }).catch((err: unknown) => this.log.warn({ err, topic }, 'cancel not yet delivered'))
  }
}

const topicOf = (fleetId: string, droneId: string) =>
  buildTopic({ kind: 'drone', fleetId, droneId, channel: 'commands' })

/** The status a drone's event moves a delivery to, and the time column it sets. */
function forward(
  event: DroneEvent,
  current: DeliveryStatus,
): { status: DeliveryStatus; column?: keyof typeof deliveries.$inferInsert } | null {
  switch (event.type) {
    case 'delivery.accepted':
      return { status: 'to_pickup' }
    case 'delivery.picked_up':
      return { status: 'picked_up', column: 'pickedUpAt' }
    case 'delivery.departed':
      return { status: 'en_route', column: 'departedAt' }
    case 'delivery.arrived':
      return { status: 'arrived', column: 'arrivedAt' }
    case 'delivery.completed':
      return { status: 'completed', column: 'completedAt' }
    case 'delivery.failed':
      // A cancel the api asked for comes back as a failure with detail "cancelled".
      return event.detail === 'cancelled' || current === 'cancelled'
        ? { status: 'cancelled', column: 'cancelledAt' }
        : { status: 'failed', column: 'failedAt' }
    case 'battery.low':
      return null
  }
}
