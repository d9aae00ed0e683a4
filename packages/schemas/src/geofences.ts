import { z } from 'zod'
import { GEOFENCE_KINDS, MAX_GEOFENCE_VERTICES } from './constants.ts'
import { IdSchema } from './ids.ts'
import { MAX_TS } from './payloads.ts'

// No-fly zones and areas (docs/architecture.md "No-fly zones and areas"): what REST takes
// and returns. Geometry is GeoJSON (RFC 7946) in WGS84 degrees, [lon, lat] order, as the
// map's drawing tools write it. What zod cannot say (a ring that crosses itself) the api
// checks with turf before storing.

/** Degrees, WGS84. */
const LonSchema = z.number().min(-180).max(180)
const LatSchema = z.number().min(-90).max(90)

/** A position: `[lon, lat]`, degrees (no altitude: zones are columns from ground to sky). */
export const PositionSchema = z
  .tuple([LonSchema, LatSchema])
  .describe('[lon, lat], degrees WGS84 (RFC 7946 §3.1.1)')

/**
 * A linear ring (RFC 7946 §3.1.6): four positions or more, the last the first. A ring
 * spanning more than 180° of longitude is refused: the planar tests (point in polygon,
 * a route crossing it) would read it the wrong way round the globe; a zone across the
 * antimeridian is two polygons, one each side (RFC 7946 §3.1.9).
 */
export const LinearRingSchema = z
  .array(PositionSchema)
  .min(4, 'a ring has at least 4 positions: 3 corners and the first again')
  .max(MAX_GEOFENCE_VERTICES)
  .refine((ring) => {
    const first = ring[0]
    const last = ring[ring.length - 1]
    return first !== undefined && last !== undefined && first[0] === last[0] && first[1] === last[1]
  }, 'a ring must end at its first position (RFC 7946 §3.1.6)')
  .refine((ring) => {
    const lons = ring.map((p) => p[0])
    return Math.max(...lons) - Math.min(...lons) <= 180
  }, 'a ring spans more than 180° of longitude: cut it at the antimeridian into a MultiPolygon (RFC 7946 §3.1.9)')

/** The outer ring, then any holes. */
const PolygonCoordinatesSchema = z
  .array(LinearRingSchema)
  .min(1, 'a polygon has an outer ring')
  .max(MAX_GEOFENCE_VERTICES)

const vertices = (polygons: [number, number][][][]): number =>
  polygons.reduce((n, rings) => n + rings.reduce((m, ring) => m + ring.length, 0), 0)

/** A zone's shape: a GeoJSON Polygon or MultiPolygon of at most MAX_GEOFENCE_VERTICES vertices. */
export const GeofenceGeometrySchema = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('Polygon'), coordinates: PolygonCoordinatesSchema }),
    z.object({
      type: z.literal('MultiPolygon'),
      coordinates: z.array(PolygonCoordinatesSchema).min(1).max(MAX_GEOFENCE_VERTICES),
    }),
  ])
  .refine(
    (g) =>
      vertices(g.type === 'Polygon' ? [g.coordinates] : g.coordinates) <= MAX_GEOFENCE_VERTICES,
    `a zone has at most ${MAX_GEOFENCE_VERTICES} vertices over all its rings`,
  )
export type GeofenceGeometry = z.infer<typeof GeofenceGeometrySchema>

/**
 * An instant of an active window: ISO 8601 with an offset, within the range of a
 * payload's `ts` (1970 to the end of 9999), which Postgres and JavaScript both hold.
 */
const InstantSchema = z.iso.datetime({ offset: true }).refine((s) => {
  const ms = Date.parse(s)
  return ms >= 0 && ms <= MAX_TS
}, 'must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z')

/** A name a person reads on the map: 1 to 100 characters, no NUL (Postgres cannot store it). */
const NameSchema = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .refine((s) => !s.includes('\u0000'), 'must not contain U+0000 (NUL)')

const fields = {
  name: NameSchema,
  kind: z.enum(GEOFENCE_KINDS).describe('`no_fly`: not to be flown through; `area`: watched'),
  geometry: GeofenceGeometrySchema,
  activeFrom: InstantSchema.nullable().describe('active from (inclusive); null: always was'),
  activeUntil: InstantSchema.nullable().describe('active until (exclusive); null: for good'),
  notifyOnEnterLeave: z
    .boolean()
    .describe('an `area` whose entering and leaving raise alerts (not for `no_fly`)'),
}

/** `POST /api/geofences`. */
export const GeofenceCreateSchema = z.object({
  fleet: IdSchema,
  ...fields,
  activeFrom: fields.activeFrom.default(null),
  activeUntil: fields.activeUntil.default(null),
  notifyOnEnterLeave: fields.notifyOnEnterLeave.default(false),
})
export type GeofenceCreate = z.infer<typeof GeofenceCreateSchema>

/** `PATCH /api/geofences/{id}`: the fields to change (null clears a window's end); the fleet stays. */
export const GeofencePatchSchema = z
  .object({
    name: fields.name.optional(),
    kind: fields.kind.optional(),
    geometry: fields.geometry.optional(),
    activeFrom: fields.activeFrom.optional(),
    activeUntil: fields.activeUntil.optional(),
    notifyOnEnterLeave: fields.notifyOnEnterLeave.optional(),
  })
  .strict()
  .refine((p) => Object.keys(p).length > 0, 'names no field to change')
export type GeofencePatch = z.infer<typeof GeofencePatchSchema>
