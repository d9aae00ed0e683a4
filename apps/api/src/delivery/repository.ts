import { and, asc, desc, eq, gte, inArray, lt, lte, notInArray, or } from 'drizzle-orm'
import { FINISHED_STATUSES, type DeliveryStatus } from '@skyline/schemas'
import type { FleetScope } from '../auth/principal.ts'
import type { Db } from '../db/client.ts'
import { fleetIn } from '../db/fleet-scope.ts'
import { deliveries, deliveryEvents, telemetry } from '../db/schema.ts'
import { notFound } from '../errors.ts'
import { MAX_TRACK_POINTS } from '../plugins/app/fleet-repository.ts'

/** The most unfinished deliveries the map is sent at once. */
export const IN_FLIGHT_LIMIT = 20_000

export type DeliveryRow = typeof deliveries.$inferSelect
export type DeliveryEventRow = typeof deliveryEvents.$inferSelect

export interface DeliveryFilter {
  /** The fleets the reader may see (narrowed by `?fleet=`: see scopeOf). */
  fleets: FleetScope
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

/**
 * Reads of deliveries for REST and the live stream; the lifecycle (lifecycle.ts) writes
 * them. A reader's reads take its fleets; a delivery outside them is not found.
 */
export class DeliveryRepository {
  constructor(private readonly db: Db) {}

  /**
   * These deliveries as they are now, of every fleet (the live stream's changes, which it
   * filters per client); unknown ids are left out.
   */
  byIds(ids: string[]): Promise<DeliveryRow[]> {
    if (ids.length === 0) return Promise.resolve([])
    return this.db.select().from(deliveries).where(inArray(deliveries.id, ids))
  }

  /**
   * Deliveries not finished yet (requested to arrived), oldest first, at most
   * IN_FLIGHT_LIMIT: the map's routes and ETAs.
   */
  async unfinished(fleets: FleetScope): Promise<DeliveryRow[]> {
    return this.db
      .select()
      .from(deliveries)
      .where(
        and(
          fleetIn(deliveries.fleetId, fleets),
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
          fleetIn(deliveries.fleetId, f.fleets),
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
  async get(
    id: string,
    fleets: FleetScope,
  ): Promise<{ delivery: DeliveryRow; events: DeliveryEventRow[] }> {
    return this.db.transaction(
      async (tx) => {
        const [delivery] = await tx
          .select()
          .from(deliveries)
          .where(and(eq(deliveries.id, id), fleetIn(deliveries.fleetId, fleets)))
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
}
