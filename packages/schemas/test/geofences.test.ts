// What a geofence's body may be: one table of accepted and refused cases, each refused one
// with the words its message must hold (the api answers them as 400s).
import { describe, expect, it } from 'vitest'
import {
  GeofenceCreateSchema,
  GeofenceGeometrySchema,
  GeofencePatchSchema,
  MAX_GEOFENCE_VERTICES,
} from '../src/index.ts'

const square = (lon: number, lat: number, d = 0.01): [number, number][] => [
  [lon, lat],
  [lon + d, lat],
  [lon + d, lat + d],
  [lon, lat + d],
  [lon, lat],
]

/** A closed ring of `n` positions (n − 1 corners on a circle). */
const circle = (n: number): [number, number][] => {
  const ring = Array.from({ length: n - 1 }, (_, i): [number, number] => {
    const a = (i / (n - 1)) * 2 * Math.PI
    return [2.35 + 0.01 * Math.cos(a), 48.85 + 0.01 * Math.sin(a)]
  })
  return [...ring, ring[0]!]
}

const body = (geometry: unknown, extra: object = {}) => ({
  fleet: 'f1',
  name: 'Tower',
  kind: 'no_fly',
  geometry,
  ...extra,
})

describe('geofence geometry', () => {
  it.each([
    ['a polygon', { type: 'Polygon', coordinates: [square(2.35, 48.85)] }],
    [
      'a polygon with a hole',
      { type: 'Polygon', coordinates: [square(2.3, 48.8, 0.1), square(2.34, 48.84)] },
    ],
    [
      'a multipolygon either side of the antimeridian',
      { type: 'MultiPolygon', coordinates: [[square(179.9, 10, 0.1)], [square(-180, 10, 0.1)]] },
    ],
    [`${MAX_GEOFENCE_VERTICES} vertices`, { type: 'Polygon', coordinates: [circle(1000)] }],
  ])('accepts %s', (_what, geometry) => {
    const parsed = GeofenceGeometrySchema.safeParse(geometry)
    expect(parsed.error).toBeUndefined()
  })

  it.each([
    ['an open ring', { type: 'Polygon', coordinates: [square(2.35, 48.85).slice(0, 4)] }, 'first'],
    [
      'a ring of three positions',
      {
        type: 'Polygon',
        coordinates: [
          [
            [0, 0],
            [1, 1],
            [0, 0],
          ],
        ],
      },
      'at least 4',
    ],
    ['a longitude past 180', { type: 'Polygon', coordinates: [square(180, 10)] }, '180'],
    ['a latitude past 90', { type: 'Polygon', coordinates: [square(10, 89.995)] }, '90'],
    ['lat/lon swapped out of range', { type: 'Polygon', coordinates: [square(48.85, 95)] }, '<=90'],
    [
      'a ring round the globe the wrong way',
      {
        type: 'Polygon',
        coordinates: [
          [
            [179, 0],
            [-179, 0],
            [-179, 1],
            [179, 1],
            [179, 0],
          ],
        ],
      },
      'antimeridian',
    ],
    [`${MAX_GEOFENCE_VERTICES + 1} vertices`, { type: 'Polygon', coordinates: [circle(1001)] }, ''],
    [
      'too many vertices over several polygons',
      { type: 'MultiPolygon', coordinates: [[circle(600)], [circle(600)]] },
      `at most ${MAX_GEOFENCE_VERTICES} vertices`,
    ],
    ['a point', { type: 'Point', coordinates: [2.35, 48.85] }, 'Polygon'],
    ['a polygon without rings', { type: 'Polygon', coordinates: [] }, 'outer ring'],
    [
      'NaN in a position',
      {
        type: 'Polygon',
        coordinates: [
          [
            [NaN, 0],
            [1, 0],
            [1, 1],
            [NaN, 0],
          ],
        ],
      },
      '',
    ],
    ['an altitude', { type: 'Polygon', coordinates: [square(2, 48).map((p) => [...p, 10])] }, ''],
  ])('refuses %s', (_what, geometry, words) => {
    const parsed = GeofenceGeometrySchema.safeParse(geometry)
    expect(parsed.success).toBe(false)
    expect(parsed.error!.issues.map((i) => i.message).join('; ')).toContain(words)
  })
})

describe('geofence bodies', () => {
  const polygon = { type: 'Polygon', coordinates: [square(2.35, 48.85)] }

  it('fills in an open window and no notifications', () => {
    expect(GeofenceCreateSchema.parse(body(polygon))).toMatchObject({
      activeFrom: null,
      activeUntil: null,
      notifyOnEnterLeave: false,
    })
  })

  it.each([
    ['an empty name', { name: '  ' }],
    ['a name with NUL', { name: 'a\u0000b' }],
    ['an unknown kind', { kind: 'restricted' }],
    ['a window of year 0', { activeFrom: '0000-01-01T00:00:00Z' }],
    ['a window with no offset', { activeUntil: '2030-01-01T00:00:00' }],
    ['a fleet that is no id', { fleet: 'a/b' }],
  ])('refuses %s', (_what, extra) => {
    expect(GeofenceCreateSchema.safeParse(body(polygon, extra)).success).toBe(false)
  })

  it('takes a patch of some fields, null clearing a window, and refuses an empty one or a fleet', () => {
    expect(GeofencePatchSchema.parse({ activeUntil: null })).toEqual({ activeUntil: null })
    expect(GeofencePatchSchema.safeParse({}).success).toBe(false)
    expect(GeofencePatchSchema.safeParse({ fleet: 'f2' }).success).toBe(false)
  })
})
