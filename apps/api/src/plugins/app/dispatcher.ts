import { randomUUID } from 'node:crypto'
import { and, asc, eq, exists, gt, gte, inArray, lt, not, or, sql } from 'drizzle-orm'
import type { SQL } from 'drizzle-orm'
import { alias } from 'drizzle-orm/pg-core'
import fp from 'fastify-plugin'
import { publishCommand } from '../external/ingest.ts'
import { buildTopic } from '@skyline/schemas'
import type { DroneCommand } from '@skyline/schemas'
import type { Db } from '../../db/client.ts'
import { deliveries, deliveryEvents, drones, stations } from '../../db/schema.ts'
import type { DeliveryStatus } from '../../db/schema.ts'
import { distanceM } from '../../geo.ts'

declare module 'fastify' {
  interface FastifyInstance {
    dispatcher: Dispatcher
  }
}

/** Statuses in which a delivery occupies its drone. */
export const ACTIVE: DeliveryStatus[] = [
  'assigned',
  'to_pickup',
  'picked_up',
  'en_route',
  'arrived',
]

export interface DispatcherOptions {
  /** How often requested deliveries are matched with drones, ms. Default 1,000. */
  intervalMs?: number
  /** An assignment the drone has not accepted after this long goes to another drone, s. Default 20. */
  acceptTimeoutS?: number
  /** Least battery for a drone to be asked, %. Default 30. */
  minBatteryPct?: number
  /** Drones asked (refusals and timeouts) before a delivery fails. Default 5. */
  maxAttempts?: number
  /** A drone silent this long is not asked, s (STALE_AFTER_S). */
  staleAfterS: number
}

type Send = (topic: string, command: DroneCommand) => Promise<void>

/**
 * Assigns requested deliveries: the nearest idle (or charging) online drone of the
 * fleet with enough battery, not busy and not one that already declined it, gets a
 * `delivery.assign` at QoS 2. An assignment not accepted in time goes back to the queue
 * for another drone (the first gets a `cancel`); the drones' events drive the rest.
 */
export class Dispatcher {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private readonly o: Required<DispatcherOptions>

  constructor(
    private readonly db: Db,
    private readonly send: Send,
    private readonly log: { warn(obj: object, msg: string): void },
    opts: DispatcherOptions,
    private readonly now: () => Date = () => new Date(),
    /** Told about every delivery the dispatcher changes, after its commit. */
    private readonly changed: (deliveryId: string) => void = () => {},
  ) {
    this.o = { intervalMs: 1_000, acceptTimeoutS: 20, minBatteryPct: 30, maxAttempts: 5, ...opts }
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.o.intervalMs)
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.running
  }

  /** One round now (also after a new request); rounds never overlap. */
  tick(): Promise<void> {
    this.running ??= this.round()
      .catch((err: unknown) => this.log.warn({ err }, 'dispatch round failed'))
      .finally(() => (this.running = undefined))
    return this.running
  }

  private async round(): Promise<void> {
    await this.requeueUnaccepted()
    // Only requests this round can settle, oldest first (issue #4): reading the oldest of
    // all let requests no drone could serve (their fleet had none free) fill the page and
    // hold back newer ones of other fleets, for as long as they waited.
    const servable = this.db
      .select({ one: sql`1` })
      .from(drones)
      .where(
        and(
          this.free(deliveries.fleetId, this.now()),
          not(sql`${deliveries.declinedBy} @> jsonb_build_array(${drones.id})`),
        ),
      )
    const station = (id: typeof deliveries.pickupStationId | typeof deliveries.dropoffStationId) =>
      this.db
        .select({ one: sql`1` })
        .from(stations)
        .where(and(eq(stations.fleetId, deliveries.fleetId), eq(stations.id, id)))
    const pending = await this.db
      .select()
      .from(deliveries)
      .where(
        and(
          eq(deliveries.status, 'requested'),
          or(
            exists(servable),
            // Those that assign() fails at once still go, whether a drone is free or not.
            sql`jsonb_array_length(${deliveries.declinedBy}) >= ${this.o.maxAttempts}`,
            not(exists(station(deliveries.pickupStationId))),
            not(exists(station(deliveries.dropoffStationId))),
          ),
        ),
      )
      .orderBy(asc(deliveries.requestedAt), asc(deliveries.id))
      .limit(50)
    for (const d of pending) await this.assign(d)
  }

  /**
   * Drones of `fleetId` free to take a delivery at `now`: online, idle or charging, with
   * the battery, heard from lately, and not busy with another delivery. One definition for
   * picking the requests of a round and the drone of each, so they cannot disagree.
   */
  private free(fleetId: typeof deliveries.fleetId | string, now: Date): SQL {
    const busy = alias(deliveries, 'busy')
    return and(
      eq(drones.fleetId, fleetId),
      eq(drones.online, true),
      inArray(drones.state, ['idle', 'charging']),
      gte(drones.batteryPct, this.o.minBatteryPct),
      // A typed comparison: postgres.js cannot send a Date as an untyped parameter.
      gt(drones.lastSeenAt, new Date(now.getTime() - this.o.staleAfterS * 1000)),
      not(
        exists(
          this.db
            .select({ one: sql`1` })
            .from(busy)
            .where(
              and(
                eq(busy.fleetId, drones.fleetId),
                eq(busy.droneId, drones.id),
                inArray(busy.status, ACTIVE),
              ),
            ),
        ),
      ),
    )!
  }

  private async requeueUnaccepted(): Promise<void> {
    const cutoff = new Date(this.now().getTime() - this.o.acceptTimeoutS * 1000)
    const late = await this.db
      .select({ id: deliveries.id, fleetId: deliveries.fleetId, droneId: deliveries.droneId })
      .from(deliveries)
      .where(and(eq(deliveries.status, 'assigned'), lt(deliveries.assignedAt, cutoff)))
    for (const d of late) {
      if (d.droneId === null) continue
      if (!(await requeue(this.db, d.id, d.droneId, 'no answer in time', this.now()))) continue
      this.changed(d.id)
      await this.send(topicOf(d.fleetId, d.droneId), {
        v: 1,
        ts: this.now().getTime(),
        id: randomUUID(),
        type: 'cancel',
        deliveryId: d.id,
      }).catch(() => {})
    }
  }

  private async assign(d: typeof deliveries.$inferSelect): Promise<void> {
    const now = this.now()
    const stops = await this.db
      .select()
      .from(stations)
      .where(
        and(
          eq(stations.fleetId, d.fleetId),
          inArray(stations.id, [d.pickupStationId, d.dropoffStationId]),
        ),
      )
    const pickup = stops.find((s) => s.id === d.pickupStationId)
    const dropoff = stops.find((s) => s.id === d.dropoffStationId)
    if (pickup === undefined || dropoff === undefined)
      return fail(this.db, d.id, 'unknown station', now)
    if (d.declinedBy.length >= this.o.maxAttempts)
      return fail(this.db, d.id, `declined by ${d.declinedBy.join(', ')}`, now)

    // Nearest by an equirectangular distance: exact enough to rank drones a few km apart.
    const [drone] = await this.db
      .select({ id: drones.id })
      .from(drones)
      .where(
        and(
          this.free(d.fleetId, now),
          d.declinedBy.length > 0
            ? sql`${drones.id} not in (${sql.join(
                d.declinedBy.map((id) => sql`${id}`),
                sql`, `,
              )})`
            : undefined,
        ),
      )
      .orderBy(
        sql`power(${drones.lat} - ${pickup.lat}::float8, 2) + power((${drones.lon} - ${pickup.lon}::float8) * cos(radians(${pickup.lat}::float8)), 2)`,
      )
      .limit(1)
    if (drone === undefined) return // nobody free: the next round tries again

    // The claim and its event in one transaction, as every status change: a reader of
    // both (GET /api/deliveries/{id}) never sees one without the other.
    const claimed = await this.db.transaction(async (tx) => {
      const rows = await tx
        .update(deliveries)
        .set({
          status: 'assigned',
          droneId: drone.id,
          assignedAt: now,
          updatedAt: now,
          distanceM: distanceM(pickup, dropoff),
        })
        .where(
          and(
            eq(deliveries.id, d.id),
            eq(deliveries.status, 'requested'),
            // Compare-and-set on what this round read: declined_by only grows, so the same
            // length means nobody declined it since and the drone picked is not among them.
            sql`jsonb_array_length(${deliveries.declinedBy}) = ${d.declinedBy.length}`,
          ),
        )
        .returning({ id: deliveries.id })
      if (rows.length === 0) return false // cancelled or re-queued meanwhile
      await tx
        .insert(deliveryEvents)
        .values({ deliveryId: d.id, status: 'assigned', at: now, detail: `drone ${drone.id}` })
      return true
    })
    if (!claimed) return // the next round sees it
    this.changed(d.id)
    const command: DroneCommand = {
      v: 1,
      ts: now.getTime(),
      id: randomUUID(),
      type: 'delivery.assign',
      deliveryId: d.id,
      pickup: { stationId: pickup.id, lat: pickup.lat, lon: pickup.lon },
      dropoff: { stationId: dropoff.id, lat: dropoff.lat, lon: dropoff.lon },
    }
    await this.send(topicOf(d.fleetId, drone.id), command)
  }
}

const topicOf = (fleetId: string, droneId: string) =>
  buildTopic({ kind: 'drone', fleetId, droneId, channel: 'commands' })

/** Back to the queue, remembering who declined. */
export async function requeue(
  db: Db,
  id: string,
  droneId: string,
  why: string,
  at: Date,
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const taken = await tx
      .update(deliveries)
      .set({
        status: 'requested',
        droneId: null,
        assignedAt: null,
        updatedAt: at,
        declinedBy: sql`${deliveries.declinedBy} || ${JSON.stringify([droneId])}::jsonb`,
      })
      // Only while it is still this drone's unaccepted assignment: a late acceptance wins.
      .where(
        and(
          eq(deliveries.id, id),
          eq(deliveries.status, 'assigned'),
          eq(deliveries.droneId, droneId),
        ),
      )
      .returning({ id: deliveries.id })
    if (taken.length === 0) return false
    await tx
      .insert(deliveryEvents)
      .values({ deliveryId: id, status: 'requested', at, detail: `drone ${droneId}: ${why}` })
    return true
  })
}

async function fail(db: Db, id: string, reason: string, at: Date): Promise<void> {
  await db.transaction(async (tx) => {
    await tx
      .update(deliveries)
      .set({ status: 'failed', failedAt: at, failureReason: reason, updatedAt: at })
      .where(eq(deliveries.id, id))
    await tx.insert(deliveryEvents).values({ deliveryId: id, status: 'failed', at, detail: reason })
  })
}

export default fp(
  async (fastify) => {
    const client = fastify.ingest.client
    const dispatcher = new Dispatcher(
      fastify.database.db,
      async (topic, command) => publishCommand(client, topic, command),
      fastify.log,
      {
        staleAfterS: fastify.config.STALE_AFTER_S,
        acceptTimeoutS: fastify.config.ACCEPT_TIMEOUT_S,
      },
      undefined,
      (id) => fastify.deliveries.changes.emit(id),
    )
    dispatcher.start()
    fastify.decorate('dispatcher', dispatcher)
    fastify.addHook('onClose', () => dispatcher.stop())
  },
  { name: 'dispatcher', dependencies: ['database', 'ingest', 'delivery-repository'] },
)
