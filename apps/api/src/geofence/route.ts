import { greatCircle } from '@turf/great-circle'
import type { LineString, MultiLineString } from 'geojson'
import { distanceM } from '../geo.ts'

/** Under this, a leg is a point (the drone is at the pick-up already), m. */
const POINT_LEG_M = 1
/**
 * One vertex of the drawn great circle per this many metres: between vertices the leg is
 * tested as a straight line in degrees, which parts from the great circle by under a
 * metre over 2 km at the latitudes drones fly.
 */
const VERTEX_EVERY_M = 2_000
/** Vertices of a leg at most (a leg of 400 km and more is drawn coarser). */
const MAX_VERTICES = 200

/**
 * The great-circle leg from `from` to `to` as GeoJSON (turf's great-circle), densified
 * so that planar intersection tests follow the curve; a MultiLineString when it crosses
 * the antimeridian. Undefined for a leg shorter than a metre: test its point instead.
 */
export function legLine(
  from: { lat: number; lon: number },
  to: { lat: number; lon: number },
): LineString | MultiLineString | undefined {
  const m = distanceM(from, to)
  if (m < POINT_LEG_M) return undefined
  const npoints = Math.min(MAX_VERTICES, Math.max(2, Math.ceil(m / VERTEX_EVERY_M) + 1))
  return greatCircle([from.lon, from.lat], [to.lon, to.lat], { npoints }).geometry
}
