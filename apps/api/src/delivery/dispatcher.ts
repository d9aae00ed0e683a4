import { and, asc, eq, exists, gt, gte, inArray, not, or, sql } from 'drizzle-orm'
import type { SQL } from 'drizzle-orm'
import { alias } from 'drizzle-orm/pg-core'
import type { Db } from '../db/client.ts'
import { deliveries, drones, stations } from '../db/schema.ts'
import type { DeliveryLifecycle, DeliveryRow } from './lifecycle.ts'
import { ACTIVE } from './transitions.ts'

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

/**
 * Decides who flies what: each requested delivery goes to the nearest idle (or charging)
 * online drone of the fleet with enough battery, not busy and not one that already
 * declined it; the lifecycle makes the move and tells the drone. An assignment not
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

    // Nobody declined it since this round read it, or the next round sees it.
    await this.lifecycle.assign(d, drone.id, pickup, dropoff)
  }
}
