import { and, eq, gte, inArray, isNotNull, or } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { deliveries, drones, stations } from '../db/schema.ts'
import type { DroneOfDelivery, PromisedDelivery, StationPresence } from './rules.ts'
import { IN_FLIGHT } from './rules.ts'

/** A delivery failed `route_blocked`, with its stops' positions. */
export interface FailedRoute {
  fleetId: string
  deliveryId: string
  pickupStationId: string
  dropoffStationId: string
  failedAt: Date | null
  pickup: { lat: number; lon: number } | null
  dropoff: { lat: number; lon: number } | null
}

/**
 * What the alert sweep reads of the others' tables (deliveries, drones, stations), never
 * writing them: the state the rules judge.
 */
export class AlertFacts {
  constructor(private readonly db: Db) {}

  /**
   * Every delivery in flight with its drone, and the deliveries `alsoIds` (named by open
   * `drone_lost` alerts) with the drones `alsoDrones` of those alerts.
   */
  async dronesOfDeliveries(
    also: readonly { deliveryId: string; droneId: string }[],
  ): Promise<DroneOfDelivery[]> {
    const inFlight = await this.db
      .select({
        fleetId: deliveries.fleetId,
        deliveryId: deliveries.id,
        deliveryStatus: deliveries.status,
        deliveryDroneId: deliveries.droneId,
        online: drones.online,
        lastSeenAt: drones.lastSeenAt,
        offlineReason: drones.offlineReason,
        onlineChangedAt: drones.onlineChangedAt,
      })
      .from(deliveries)
      .leftJoin(
        drones,
        and(eq(drones.fleetId, deliveries.fleetId), eq(drones.id, deliveries.droneId)),
      )
      .where(inArray(deliveries.status, [...IN_FLIGHT]))
    const rows: DroneOfDelivery[] = inFlight.flatMap((r) =>
      r.deliveryDroneId === null ? [] : [{ ...r, droneId: r.deliveryDroneId }],
    )
    const seen = new Set(rows.map((r) => `${r.deliveryId}/${r.droneId}`))
    const missing = also.filter((a) => !seen.has(`${a.deliveryId}/${a.droneId}`))
    if (missing.length === 0) return rows
    const named = await this.db
      .select({
        fleetId: deliveries.fleetId,
        deliveryId: deliveries.id,
        deliveryStatus: deliveries.status,
        deliveryDroneId: deliveries.droneId,
      })
      .from(deliveries)
      .where(
        inArray(
          deliveries.id,
          missing.map((m) => m.deliveryId),
        ),
      )
    const droneRows = await this.db
      .select()
      .from(drones)
      .where(
        inArray(
          drones.id,
          missing.map((m) => m.droneId),
        ),
      )
    for (const m of missing) {
      const d = named.find((n) => n.deliveryId === m.deliveryId)
      if (d === undefined) continue // gone: its alert resolves
      const drone = droneRows.find((r) => r.fleetId === d.fleetId && r.id === m.droneId)
      rows.push({
        ...d,
        droneId: m.droneId,
        online: drone?.online ?? null,
        lastSeenAt: drone?.lastSeenAt ?? null,
        offlineReason: drone?.offlineReason ?? null,
        onlineChangedAt: drone?.onlineChangedAt ?? null,
      })
    }
    return rows
  }

  /**
   * Every delivery in flight with a promise, and the deliveries `alsoIds` (named by open
   * `delivery_late` alerts, in any status), each with its drone's clock.
   */
  promisedDeliveries(alsoIds: readonly string[]): Promise<PromisedDelivery[]> {
    const inFlight = and(
      inArray(deliveries.status, [...IN_FLIGHT]),
      isNotNull(deliveries.promisedAt),
    )
    return this.db
      .select({
        fleetId: deliveries.fleetId,
        deliveryId: deliveries.id,
        status: deliveries.status,
        droneId: deliveries.droneId,
        promisedAt: deliveries.promisedAt,
        etaAt: deliveries.etaAt,
        arrivedAt: deliveries.arrivedAt,
        positionAt: drones.positionAt,
        lastSeenAt: drones.lastSeenAt,
      })
      .from(deliveries)
      .leftJoin(
        drones,
        and(eq(drones.fleetId, deliveries.fleetId), eq(drones.id, deliveries.droneId)),
      )
      .where(alsoIds.length > 0 ? or(inFlight, inArray(deliveries.id, [...alsoIds])) : inFlight)
  }

  /** Every station offline now. */
  offlineStations(): Promise<StationPresence[]> {
    return this.db
      .select({
        fleetId: stations.fleetId,
        stationId: stations.id,
        online: stations.online,
        onlineChangedAt: stations.onlineChangedAt,
      })
      .from(stations)
      .where(eq(stations.online, false))
  }

  /**
   * Deliveries failed `route_blocked` since `since`, and those of `alsoIds` (open alerts
   * of older ones), with their stops.
   */
  async failedRoutes(since: Date, alsoIds: readonly string[]): Promise<FailedRoute[]> {
    const rows = await this.db
      .select()
      .from(deliveries)
      .where(
        and(
          eq(deliveries.status, 'failed'),
          eq(deliveries.failureReason, 'route_blocked'),
          alsoIds.length > 0
            ? or(gte(deliveries.failedAt, since), inArray(deliveries.id, [...alsoIds]))
            : gte(deliveries.failedAt, since),
        ),
      )
    if (rows.length === 0) return []
    const stops = await this.db
      .select()
      .from(stations)
      .where(
        inArray(
          stations.id,
          rows.flatMap((r) => [r.pickupStationId, r.dropoffStationId]),
        ),
      )
    const at = (fleetId: string, id: string) => {
      const s = stops.find((x) => x.fleetId === fleetId && x.id === id)
      return s === undefined ? null : { lat: s.lat, lon: s.lon }
    }
    return rows.map((r) => ({
      fleetId: r.fleetId,
      deliveryId: r.id,
      pickupStationId: r.pickupStationId,
      dropoffStationId: r.dropoffStationId,
      failedAt: r.failedAt,
      pickup: at(r.fleetId, r.pickupStationId),
      dropoff: at(r.fleetId, r.dropoffStationId),
    }))
  }
}
