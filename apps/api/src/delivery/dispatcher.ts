import { and, asc, eq, exists, gt, gte, inArray, lte, not, or, sql } from 'drizzle-orm'
import type { SQL } from 'drizzle-orm'
import { alias } from 'drizzle-orm/pg-core'
import type { Db } from '../db/client.ts'
import { deliveries, drones, stations } from '../db/schema.ts'
import type { DeliveryLifecycle, DeliveryRow } from './lifecycle.ts'
import { ACTIVE } from './transitions.ts'

/** A point of a route, degrees. */
interface Point {
  lat: number
  lon: number
}

/** A no-fly zone a leg crosses: what a failure names. */
export interface BlockingZone {
  id: string
  name: string
}

/**
 * The active no-fly zones of `fleetId` that the great-circle leg from `from` to `to`
 * crosses at `at` (the geofence index's `crossing`).
 */
export type RouteCheck = (fleetId: string, from: Point, to: Point, at: Date) => BlockingZone[]

/** Drones asked about, nearest first, for one whose leg to the pick-up is clear. */
const CANDIDATES = 20

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
  /**
   * A delivery whose route has crossed an active no-fly zone this long fails
   * `route_blocked`, s (ROUTE_BLOCKED_TIMEOUT_S; 0: at once). Default 300.
   */
  routeBlockedTimeoutS?: number
  /** Which no-fly zones a leg crosses. Default: none ever does. */
  routes?: RouteCheck
}

/**
 * Decides who flies what: each requested delivery goes to the nearest idle (or charging)
 * online drone of the fleet with enough battery, not busy, not one that already declined
 * it, and whose leg to the pick-up crosses no active no-fly zone; a delivery whose
 * pick-up to drop-off leg crosses one (or every free drone's leg does) waits for it to be
 * lifted, and fails `route_blocked` after ROUTE_BLOCKED_TIMEOUT_S. The lifecycle makes
 * the moves and tells the drone. An assignment not
 * accepted in time goes back to the queue for another drone; the drones' events drive
 * the rest.
 */
export class Dispatcher {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private readonly o: Required<DispatcherOptions>

  constructor(
    private readonly db: Db,
    private readonly lifecycle: DeliveryLifecycle,
    private readonly log: { warn(obj: object, msg: string): void },
    opts: DispatcherOptions,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.o = {
      intervalMs: 1_000,
      acceptTimeoutS: 20,
      minBatteryPct: 30,
      maxAttempts: 5,
      routeBlockedTimeoutS: 300,
      routes: () => [],
      ...opts,
    }
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
    await this.lifecycle.requeueUnaccepted(
      new Date(this.now().getTime() - this.o.acceptTimeoutS * 1000),
    )
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
            // Blocked long enough to fail, if its route is still blocked.
            lte(
              deliveries.routeBlockedSince,
              new Date(this.now().getTime() - this.o.routeBlockedTimeoutS * 1000),
            ),
          ),
        ),
      )
      // Those waiting for a zone to lift after the others: they cannot hold back
      // requests that can be flown.
      .orderBy(
        asc(sql`${deliveries.routeBlockedSince} IS NOT NULL`),
        asc(deliveries.requestedAt),
        asc(deliveries.id),
      )
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

  private async assign(d: DeliveryRow): Promise<void> {
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
      return this.lifecycle.fail(d.id, 'unknown station')
    if (d.declinedBy.length >= this.o.maxAttempts)
      return this.lifecycle.fail(d.id, `declined by ${d.declinedBy.join(', ')}`)

    // No-fly zones (issue 18): the leg from pick-up to drop-off, then the chosen drone's
    // to the pick-up.
    const blocking = this.o.routes(d.fleetId, pickup, dropoff, now)
    if (blocking.length > 0) return this.blocked(d, blocking, now)

    // Nearest by an equirectangular distance: exact enough to rank drones a few km apart.
    const candidates = await this.db
      .select({
        id: drones.id,
        lat: drones.lat,
        lon: drones.lon,
        positionAt: drones.positionAt,
        lastSeenAt: drones.lastSeenAt,
      })
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
      .limit(CANDIDATES)
    const legBlocking: BlockingZone[] = []
    const drone = candidates.find((c) => {
      // A drone with no position yet has no leg to check.
      if (c.lat === null || c.lon === null) return true
      const zones = this.o.routes(d.fleetId, { lat: c.lat, lon: c.lon }, pickup, now)
      legBlocking.push(...zones)
      return zones.length === 0
    })
    if (drone === undefined) {
      // Free drones, and every one's way to the pick-up blocked.
      if (candidates.length > 0) return this.blocked(d, legBlocking, now)
      // Nobody free: the next round tries again (and the route is clear).
      await this.lifecycle.routeBlocked(d, false)
      return
    }

    // Nobody declined it since this round read it, or the next round sees it.
    await this.lifecycle.assign(d, drone, pickup, dropoff)
  }

  /**
   * Its route crosses active no-fly zones: it waits (`routeBlockedSince`), to be assigned
   * once they are lifted (deleted, changed, or past their window), and fails
   * `route_blocked` when they have not been within ROUTE_BLOCKED_TIMEOUT_S.
   */
  private async blocked(d: DeliveryRow, zones: BlockingZone[], now: Date): Promise<void> {
    const since = await this.lifecycle.routeBlocked(d, true)
    if (since === undefined) return // no longer requested
    if (now.getTime() - since.getTime() < this.o.routeBlockedTimeoutS * 1000) return
    const named = [...new Map(zones.map((z) => [z.id, z])).values()]
      .map((z) => `${JSON.stringify(z.name)} (${z.id})`)
      .join(', ')
    await this.lifecycle.fail(d.id, 'route_blocked', `route_blocked: crosses no-fly zone ${named}`)
  }
}
