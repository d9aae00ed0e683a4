import { randomUUID } from 'node:crypto'
import { and, asc, desc, eq, gte, inArray, lt, lte, notInArray, or } from 'drizzle-orm'
import fp from 'fastify-plugin'
import type { Db } from '../../db/client.ts'
import { DeliveryChanges } from '../../delivery/changes.ts'
import { deliveries, deliveryEvents, stations, telemetry } from '../../db/schema.ts'
import { FINISHED_STATUSES, type DeliveryStatus } from '@skyline/schemas'
import { ApiError, notFound } from '../../errors.ts'
import { ACTIVE } from './dispatcher.ts'
import { MAX_TRACK_POINTS } from './fleet-repository.ts'

declare module 'fastify' {
  interface FastifyInstance {
    deliveries: DeliveryRepository
  }
}

/** The most unfinished deliveries the map is sent at once. */
export const IN_FLIGHT_LIMIT = 20_000

export type DeliveryRow = typeof deliveries.$inferSelect
export type DeliveryEventRow = typeof deliveryEvents.$inferSelect

export interface DeliveryFilter {
  fleetId?: string
  status?: DeliveryStatus
  droneId?: string
  stationId?: string
  from?: Date
  to?: Date
  limit: number
  /** Rows after this one in the order (newest first): the previous page's `next`. */
  after?: DeliveryPosition
}

/** A row's place in the order: its request time and id. */
export interface DeliveryPosition {
  at: Date
  id: string
}

export class DeliveryRepository {
  constructor(
    private readonly db: Db,
    /** Where every change this repository commits is told. */
    readonly changes: DeliveryChanges,
  ) {}

  async create(
    input: {
      fleetId: string
      pickupStationId: string
      dropoffStationId: string
      payloadKg: number
    },
    now: Date,
  ): Promise<DeliveryRow> {
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
    // The row and its event in one transaction, as every status change.
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
    this.changes.emit(row.id)
    return row
  }

  /**
   * Deliveries not finished yet (requested to arrived), oldest first, at most
   * IN_FLIGHT_LIMIT: the map's routes and ETAs.
   */
  async unfinished(fleetId?: string): Promise<DeliveryRow[]> {
    return this.db
      .select()
      .from(deliveries)
      .where(
        and(
          fleetId !== undefined ? eq(deliveries.fleetId, fleetId) : undefined,
          notInArray(deliveries.status, [...FINISHED_STATUSES]),
        ),
      )
      .orderBy(asc(deliveries.requestedAt), asc(deliveries.id))
      .limit(IN_FLIGHT_LIMIT)
  }

  /** Newest first, a page at a time. */
  async list(
    f: DeliveryFilter,
  ): Promise<{ deliveries: DeliveryRow[]; next: DeliveryPosition | null }> {
    const { after } = f
    const rows = await this.db
      .select()
      .from(deliveries)
      .where(
        and(
          f.fleetId !== undefined ? eq(deliveries.fleetId, f.fleetId) : undefined,
          f.status !== undefined ? eq(deliveries.status, f.status) : undefined,
          f.droneId !== undefined ? eq(deliveries.droneId, f.droneId) : undefined,
          f.stationId !== undefined
            ? or(
                eq(deliveries.pickupStationId, f.stationId),
                eq(deliveries.dropoffStationId, f.stationId),
              )
            : undefined,
          f.from !== undefined ? gte(deliveries.requestedAt, f.from) : undefined,
          f.to !== undefined ? lte(deliveries.requestedAt, f.to) : undefined,
          after !== undefined
            ? or(
                lt(deliveries.requestedAt, after.at),
                and(eq(deliveries.requestedAt, after.at), lt(deliveries.id, after.id)),
              )
            : undefined,
        ),
      )
      .orderBy(desc(deliveries.requestedAt), desc(deliveries.id))
      .limit(f.limit + 1)
    const page = rows.slice(0, f.limit)
    return {
      deliveries: page,
      next: rows.length > f.limit ? { at: page.at(-1)!.requestedAt, id: page.at(-1)!.id } : null,
    }
  }

  /**
   * A delivery and its events as of one moment: read in one repeatable-read
   * transaction, so a transition committed between the two reads cannot show the row
   * in one state and its events in the next (a refusal did, under load).
   */
  async get(id: string): Promise<{ delivery: DeliveryRow; events: DeliveryEventRow[] }> {
    return this.db.transaction(
      async (tx) => {
        const [delivery] = await tx.select().from(deliveries).where(eq(deliveries.id, id))
        if (delivery === undefined) throw notFound('delivery', id)
        const events = await tx
          .select()
          .from(deliveryEvents)
          .where(eq(deliveryEvents.deliveryId, id))
          .orderBy(asc(deliveryEvents.id))
        return { delivery, events }
      },
      { isolationLevel: 'repeatable read', accessMode: 'read only' },
    )
  }

  /** The positions its drone reported while flying it. */
  flownTrack(d: DeliveryRow) {
    if (d.droneId === null) return Promise.resolve([])
    return this.db
      .select({
        ts: telemetry.ts,
        lat: telemetry.lat,
        lon: telemetry.lon,
        altM: telemetry.altM,
        speedMps: telemetry.speedMps,
      })
      .from(telemetry)
      .where(
        and(
          eq(telemetry.fleetId, d.fleetId),
          eq(telemetry.droneId, d.droneId),
          eq(telemetry.deliveryId, d.id),
        ),
      )
      .orderBy(asc(telemetry.ts))
      .limit(MAX_TRACK_POINTS)
  }

  /** Cancels a delivery not yet finished; returns it, with the drone to tell if one flies it. */
  async cancel(id: string, now: Date): Promise<{ delivery: DeliveryRow; notify: string | null }> {
    // One statement: whatever step the drone has reached meanwhile, it is still
    // cancellable. Its event in the same transaction, as every status change.
    const row = await this.db.transaction(async (tx) => {
      const [cancelled] = await tx
        .update(deliveries)
        .set({ status: 'cancelled', cancelledAt: now, updatedAt: now })
        .where(and(eq(deliveries.id, id), inArray(deliveries.status, ['requested', ...ACTIVE])))
        .returning()
      if (cancelled !== undefined) {
        await tx
          .insert(deliveryEvents)
          .values({ deliveryId: id, status: 'cancelled', at: now, detail: 'operator' })
      }
      return cancelled
    })
    if (row === undefined) {
      const { delivery } = await this.get(id) // 404 when there is none
      throw new ApiError(409, 'not_cancellable', `delivery ${id} is ${delivery.status}`)
    }
    this.changes.emit(row.id)
    return { delivery: row, notify: row.droneId }
  }
}

export default fp(
  async (fastify) => {
    const changes = new DeliveryChanges((err, id) =>
      fastify.log.error({ err, deliveryId: id }, 'a delivery change listener failed'),
    )
    fastify.decorate('deliveries', new DeliveryRepository(fastify.database.db, changes))
  },
  { name: 'delivery-repository', dependencies: ['database'] },
)
