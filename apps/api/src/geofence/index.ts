import Flatbush from 'flatbush'
import { bbox } from '@turf/bbox'
import { booleanIntersects } from '@turf/boolean-intersects'
import { booleanPointInPolygon } from '@turf/boolean-point-in-polygon'
import type { GeofenceKind } from '@skyline/schemas'
import type { Polygon } from 'geojson'
import type { IngestItem } from '../ingest/items.ts'
import type { GeofenceRow } from './repository.ts'
import { legLine } from './route.ts'

/** A zone as the index holds it: its row. */
export type Zone = GeofenceRow

/** A position inside active zones (breachesIn): the telemetry item's drone, where and when. */
export interface GeofenceHit {
  fleetId: string
  droneId: string
  /** The device's `ts`, epoch ms. */
  ts: number
  /** When the api received it: the time the zones' windows were judged at. */
  receivedAt: Date
  lat: number
  lon: number
  /** The active zones holding the position, no_fly and area alike (at least one). */
  zones: Zone[]
}

/** One fleet's zones: a static R-tree over the boxes of their polygons. */
interface FleetZones {
  tree: Flatbush
  /** Per box of the tree, in the order added: the zone and the polygon it bounds. */
  parts: { zone: Zone; polygon: Polygon }[]
}

/** Whether `zone` is active at `at`: from `activeFrom` (inclusive) to `activeUntil` (exclusive). */
export const isActive = (zone: Zone, at: Date): boolean =>
  (zone.activeFrom === null || zone.activeFrom <= at) &&
  (zone.activeUntil === null || at < zone.activeUntil)

/**
 * The zones of every fleet in memory, for the checks that cannot wait for a query: the
 * ingest's per-telemetry lookup (issue 18, item 4) and the dispatcher's route check. Per
 * fleet, a flatbush tree over the bounding boxes of the zones' polygons (a MultiPolygon's
 * parts each have their own) narrows a point or a leg to a few candidates, and turf makes
 * the exact test. Inactive zones stay in it; the windows are judged at the time asked
 * about, so no timer has to flip them.
 *
 * It holds what it is given: GeofenceService, the one writer of zones, gives it a fleet's
 * zones again after each change it commits, and all of them at start and periodically.
 */
export class GeofenceIndex {
  private fleets = new Map<string, FleetZones>()

  /** Replaces every fleet's zones (a full reload). */
  replaceAll(rows: readonly Zone[]): void {
    const byFleet = new Map<string, Zone[]>()
    for (const row of rows) {
      const list = byFleet.get(row.fleetId) ?? []
      list.push(row)
      byFleet.set(row.fleetId, list)
    }
    const next = new Map<string, FleetZones>()
    for (const [fleetId, zones] of byFleet) next.set(fleetId, build(zones))
    this.fleets = next
  }

  /** Replaces one fleet's zones (after a change to them). */
  replaceFleet(fleetId: string, rows: readonly Zone[]): void {
    if (rows.length === 0) this.fleets.delete(fleetId)
    else this.fleets.set(fleetId, build(rows))
  }

  /** Zones held, over every fleet. */
  get size(): number {
    let n = 0
    for (const f of this.fleets.values()) n += new Set(f.parts.map((p) => p.zone.id)).size
    return n
  }

  /** The zones of `fleetId` active at `at` that hold the point (a boundary counts as inside). */
  zonesAt(fleetId: string, lat: number, lon: number, at: Date, kind?: GeofenceKind): Zone[] {
    const fleet = this.fleets.get(fleetId)
    if (fleet === undefined) return []
    const found: Zone[] = []
    for (const i of fleet.tree.search(lon, lat, lon, lat)) {
      const { zone, polygon } = fleet.parts[i]!
      if (kind !== undefined && zone.kind !== kind) continue
      if (!isActive(zone, at) || found.includes(zone)) continue
      if (booleanPointInPolygon([lon, lat], polygon)) found.push(zone)
    }
    return found
  }

  /**
   * The zones of `fleetId` of `kind` active at `at` that the great-circle leg from `from`
   * to `to` enters or touches (route.ts draws the leg).
   */
  crossing(
    fleetId: string,
    from: { lat: number; lon: number },
    to: { lat: number; lon: number },
    at: Date,
    kind: GeofenceKind = 'no_fly',
  ): Zone[] {
    const fleet = this.fleets.get(fleetId)
    if (fleet === undefined) return []
    const line = legLine(from, to)
    if (line === undefined) return this.zonesAt(fleetId, from.lat, from.lon, at, kind)
    const [west, south, east, north] = bbox(line)
    const found: Zone[] = []
    for (const i of fleet.tree.search(west, south, east, north)) {
      const { zone, polygon } = fleet.parts[i]!
      if (zone.kind !== kind || !isActive(zone, at) || found.includes(zone)) continue
      if (booleanIntersects(line, polygon)) found.push(zone)
    }
    return found
  }

  /**
   * The geofence check of a batch of the ingest (issue 18, item 4): for each telemetry
   * item inside at least one zone active when the api received it, the zones. An item not
   * listed is inside none, so an area left shows as its drone's absence. What the alerts
   * make of it (a breach, entering, leaving) is theirs.
   */
  breachesIn(items: readonly IngestItem[]): GeofenceHit[] {
    const hits: GeofenceHit[] = []
    if (this.fleets.size === 0) return hits
    for (const item of items) {
      if (item.kind !== 'telemetry') continue
      const { lat, lon, ts } = item.msg
      const zones = this.zonesAt(item.fleetId, lat, lon, item.receivedAt)
      if (zones.length > 0)
        hits.push({
          fleetId: item.fleetId,
          droneId: item.droneId,
          ts,
          receivedAt: item.receivedAt,
          lat,
          lon,
          zones,
        })
    }
    return hits
  }
}

function build(zones: readonly Zone[]): FleetZones {
  const parts = zones.flatMap((zone) =>
    zone.geometry.type === 'Polygon'
      ? [{ zone, polygon: zone.geometry }]
      : zone.geometry.coordinates.map((coordinates) => ({
          zone,
          polygon: { type: 'Polygon' as const, coordinates },
        })),
  )
  const tree = new Flatbush(parts.length)
  for (const { polygon } of parts) {
    // The outer ring bounds the polygon (holes lie inside it).
    let [west, south, east, north] = [Infinity, Infinity, -Infinity, -Infinity]
    for (const [lon, lat] of polygon.coordinates[0]!) {
      west = Math.min(west, lon)
      east = Math.max(east, lon)
      south = Math.min(south, lat)
      north = Math.max(north, lat)
    }
    tree.add(west, south, east, north)
  }
  tree.finish()
  return { tree, parts }
}
