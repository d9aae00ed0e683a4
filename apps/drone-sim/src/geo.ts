// Great-circle geometry on a spherical Earth: good to a fraction of a percent at the
// tens of kilometres a delivery fleet covers.

export interface LatLon {
  lat: number
  lon: number
}

/** Mean Earth radius, metres (IUGG). */
export const EARTH_RADIUS_M = 6_371_008.8

const rad = (deg: number) => (deg * Math.PI) / 180
const deg = (r: number) => (r * 180) / Math.PI

/** Great-circle distance, metres (haversine). */
export function distanceM(a: LatLon, b: LatLon): number {
  const dLat = rad(b.lat - a.lat)
  const dLon = rad(b.lon - a.lon)
  const h =
    Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLon / 2) ** 2
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)))
}

/** Initial bearing from a to b, degrees clockwise from true north, [0, 360). */
export function bearingDeg(a: LatLon, b: LatLon): number {
  const φ1 = rad(a.lat)
  const φ2 = rad(b.lat)
  const Δλ = rad(b.lon - a.lon)
  const y = Math.sin(Δλ) * Math.cos(φ2)
  const x = Math.cos(φ1) * Math.sin(φ2) - Math.sin(φ1) * Math.cos(φ2) * Math.cos(Δλ)
  return normalizeDeg(deg(Math.atan2(y, x)))
}

/** The point `distM` metres from `from` on initial bearing `bearing` (degrees). */
export function destinationPoint(from: LatLon, bearing: number, distM: number): LatLon {
  const δ = distM / EARTH_RADIUS_M
  const θ = rad(bearing)
  const φ1 = rad(from.lat)
  const λ1 = rad(from.lon)
  const φ2 = Math.asin(Math.sin(φ1) * Math.cos(δ) + Math.cos(φ1) * Math.sin(δ) * Math.cos(θ))
  const λ2 =
    λ1 +
    Math.atan2(Math.sin(θ) * Math.sin(δ) * Math.cos(φ1), Math.cos(δ) - Math.sin(φ1) * Math.sin(φ2))
  return { lat: deg(φ2), lon: normalizeLon(deg(λ2)) }
}

/** `distM` metres along the great circle from `from` towards `to`; `to` itself if that is nearer. */
export function moveToward(from: LatLon, to: LatLon, distM: number): LatLon {
  if (distM >= distanceM(from, to)) return { ...to }
  return destinationPoint(from, bearingDeg(from, to), distM)
}

/** A point spread uniformly over the disc of `radiusM` around `center`. */
export function randomPointWithin(center: LatLon, radiusM: number, random: () => number): LatLon {
  return destinationPoint(center, random() * 360, radiusM * Math.sqrt(random()))
}

export function normalizeDeg(d: number): number {
  const n = d % 360
  return n < 0 ? n + 360 : n
}

function normalizeLon(lon: number): number {
  return ((((lon + 180) % 360) + 360) % 360) - 180
}
