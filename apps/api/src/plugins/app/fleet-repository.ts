import { and, asc, count, eq, gte, lte, sql } from 'drizzle-orm'
import fp from 'fastify-plugin'
import type { FleetScope } from '../../auth/principal.ts'
import type { Db } from '../../db/client.ts'
import { fleetIn } from '../../db/fleet-scope.ts'
import { rowsOf } from '../../db/partitions.ts'
import { deliveries, drones, rejectedMessages, stations, telemetry } from '../../db/schema.ts'
import { ApiError } from '../../errors.ts'
import { horizonStats } from '../../delivery/eta-horizons-store.ts'
import type { HorizonStats } from '../../delivery/eta-horizons-store.ts'

export type DroneRow = typeof drones.$inferSelect
export type StationRow = typeof stations.$inferSelect
export type TrackPoint = Pick<
  typeof telemetry.$inferSelect,
  | 'ts'
  | 'seq'
  | 'lat'
  | 'lon'
  | 'altM'
  | 'speedMps'
  | 'headingDeg'
  | 'batteryPct'
  | 'state'
  | 'deliveryId'
>

declare module 'fastify' {
  interface FastifyInstance {
    fleet: FleetRepository
  }
}

/** Most points one track request returns: a day at 1 Hz with room to spare. */
export const MAX_TRACK_POINTS = 200_000

/**
 * Reads drones, stations, tracks and counts. Routes ask it; they never query directly.
 * Every read takes the fleets it may see (`FleetScope`: a reader's, from `scopeOf`).
 */
export class FleetRepository {
  constructor(private readonly db: Db) {}

  listDrones(fleets: FleetScope): Promise<DroneRow[]> {
    return this.db
      .select()
      .from(drones)
      .where(fleetIn(drones.fleetId, fleets))
      .orderBy(asc(drones.fleetId), asc(drones.id))
  }

  /** The drones of these `fleetId/id` keys (the live stream's changes told by another instance). */
  dronesByKeys(keys: readonly string[]): Promise<DroneRow[]> {
    const pairs = keys.map((k) => [k.slice(0, k.indexOf('/')), k.slice(k.indexOf('/') + 1)])
    // One parameter (drizzle spreads an array into a list of them): a JSON array of pairs.
    return this.db
      .select()
      .from(drones)
      .where(
        sql`(${drones.fleetId}, ${drones.id}) IN
          (SELECT k->>0, k->>1 FROM json_array_elements(${JSON.stringify(pairs)}::json) AS k)`,
      )
  }

  /**
   * The drone with this id among `fleets` (narrowed to one by `?fleet=` to tell apart two
   * fleets that use the same id); one outside them is not found, and not counted for
   * `ambiguous_id` either.
   */
  async getDrone(id: string, fleets: FleetScope): Promise<DroneRow | undefined> {
    const rows = await this.db
      .select()
      .from(drones)
      .where(and(eq(drones.id, id), fleetIn(drones.fleetId, fleets)))
    return single(rows, 'drone', id)
  }

  listStations(fleets: FleetScope): Promise<StationRow[]> {
    return this.db
      .select()
      .from(stations)
      .where(fleetIn(stations.fleetId, fleets))
      .orderBy(asc(stations.fleetId), asc(stations.id))
  }

  async getStation(id: string, fleets: FleetScope): Promise<StationRow | undefined> {
    const rows = await this.db
      .select()
      .from(stations)
      .where(and(eq(stations.id, id), fleetIn(stations.fleetId, fleets)))
    return single(rows, 'station', id)
  }

  /** A drone's positions between `from` and `to`, oldest first (a drone getDrone found in scope). */
  track(fleetId: string, droneId: string, from: Date, to: Date): Promise<TrackPoint[]> {
    return this.db
      .select({
        ts: telemetry.ts,
        seq: telemetry.seq,
        lat: telemetry.lat,
        lon: telemetry.lon,
        altM: telemetry.altM,
        speedMps: telemetry.speedMps,
        headingDeg: telemetry.headingDeg,
        batteryPct: telemetry.batteryPct,
        state: telemetry.state,
        deliveryId: telemetry.deliveryId,
      })
      .from(telemetry)
      .where(
        and(
          eq(telemetry.fleetId, fleetId),
          eq(telemetry.droneId, droneId),
          gte(telemetry.ts, from),
          lte(telemetry.ts, to),
        ),
      )
      .orderBy(asc(telemetry.ts), asc(telemetry.seq))
      .limit(MAX_TRACK_POINTS)
  }

  /**
   * The same positions as `track`, as a GeoJSON Feature text: a LineString [lon, lat, altM]
   * with the times (as `toISOString` writes them) and ground speeds alongside. Postgres
   * writes the text: a day at 1 Hz is 86,400 points, and parsing them into objects only to
   * serialise them again held the api's event loop (and so the ingest) for about half a
   * second per request; the database's process does it in a fraction of that (issue #7).
   * Numbers print alike: Postgres 12+ writes floats shortest-exact, as JavaScript does.
   */
  async trackGeoJson(fleetId: string, droneId: string, from: Date, to: Date): Promise<string> {
    const ordered = sql`ORDER BY p.ts, p.seq`
    const result = await this.db.execute(sql`
      SELECT
        coalesce(string_agg('[' || p.lon || ',' || p.lat || ',' || p.alt_m || ']', ',' ${ordered}), '') AS coordinates,
        coalesce(string_agg('"' || to_char(p.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"', ',' ${ordered}), '') AS times,
        coalesce(string_agg(p.speed_mps::text, ',' ${ordered}), '') AS speeds
      FROM (
        SELECT ${telemetry.ts} AS ts, ${telemetry.seq} AS seq, ${telemetry.lon} AS lon,
          ${telemetry.lat} AS lat, ${telemetry.altM} AS alt_m, ${telemetry.speedMps} AS speed_mps
        FROM ${telemetry}
        WHERE ${telemetry.fleetId} = ${fleetId} AND ${telemetry.droneId} = ${droneId}
          AND ${telemetry.ts} >= ${from.toISOString()}::timestamptz
          AND ${telemetry.ts} <= ${to.toISOString()}::timestamptz
        ORDER BY ${telemetry.ts}, ${telemetry.seq}
        LIMIT ${MAX_TRACK_POINTS}
      ) p`)
    const [row] = rowsOf<{ coordinates: string; times: string; speeds: string }>(result)
    return (
      `{"type":"Feature","geometry":{"type":"LineString","coordinates":[${row?.coordinates ?? ''}]},` +
      `"properties":{"droneId":${JSON.stringify(droneId)},"times":[${row?.times ?? ''}],` +
      `"speedsMps":[${row?.speeds ?? ''}]}}`
    )
  }

  /**
   * Drones, stations, deliveries and the ETA error over `fleets`; the dead letters
   * (`rejected`) over every fleet: they are the ingest's, and many have no fleet at all
   * (a topic that is not Skyline's).
   */
  async counts(fleets: FleetScope): Promise<{
    drones: number
    dronesOnline: number
    stations: number
    deliveries: number
    rejected: number
    etaMeanAbsErrorS: number | null
    etaSamples: number
  }> {
    const [d] = await this.db
      .select({
        total: count(),
        online: sql<number>`count(*) filter (where ${drones.online})`.mapWith(Number),
      })
      .from(drones)
      .where(fleetIn(drones.fleetId, fleets))
    const [s] = await this.db
      .select({ total: count() })
      .from(stations)
      .where(fleetIn(stations.fleetId, fleets))
    const [del] = await this.db
      .select({
        total: count(),
        etaSamples: count(deliveries.etaErrorS),
        etaMae: sql<number | null>`avg(abs(${deliveries.etaErrorS}))`.mapWith((v: unknown) =>
          v === null ? null : Number(v),
        ),
      })
      .from(deliveries)
      .where(fleetIn(deliveries.fleetId, fleets))
    const [r] = await this.db.select({ total: count() }).from(rejectedMessages)
    return {
      drones: d?.total ?? 0,
      dronesOnline: d?.online ?? 0,
      stations: s?.total ?? 0,
      deliveries: del?.total ?? 0,
      rejected: r?.total ?? 0,
      etaMeanAbsErrorS: del?.etaMae ?? null,
      etaSamples: del?.etaSamples ?? 0,
    }
  }

  /** The ETA error of `fleets`' arrived deliveries at each horizon of their flight. */
  etaHorizons(fleets: FleetScope): Promise<HorizonStats[]> {
    return horizonStats(this.db, fleets)
  }
}

function single<T extends { fleetId: string }>(rows: T[], what: string, id: string): T | undefined {
  if (rows.length > 1) {
    const fleets = rows.map((r) => r.fleetId).join(', ')
    throw new ApiError(
      409,
      'ambiguous_id',
      `${what} ${id} exists in several fleets (${fleets}): add ?fleet=`,
    )
  }
  return rows[0]
}

export default fp(
  async (fastify) => {
    fastify.decorate('fleet', new FleetRepository(fastify.database.db))
  },
  { name: 'fleet-repository', dependencies: ['database'] },
)
