// The geofence index on its own: which zones hold a point, when, and which a leg crosses.
import { describe, expect, it } from 'vitest'
import type { GeofenceGeometry } from '@skyline/schemas'
import { GeofenceIndex } from '../src/geofence/index.ts'
import type { Zone } from '../src/geofence/index.ts'
import type { IngestItem } from '../src/ingest/items.ts'
import { square, telemetryAt } from './helpers.ts'

const T0 = new Date('2030-01-01T12:00:00Z')
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000)

const zone = (id: string, geometry: GeofenceGeometry, o: Partial<Zone> = {}): Zone => ({
  id,
  fleetId: 'f1',
  name: id,
  kind: 'no_fly',
  geometry,
  activeFrom: null,
  activeUntil: null,
  notifyOnEnterLeave: false,
  createdAt: T0,
  updatedAt: T0,
  ...o,
})

const polygon = (...rings: [number, number][][]): GeofenceGeometry => ({
  type: 'Polygon',
  coordinates: rings,
})

const ids = (zones: Zone[]) => zones.map((z) => z.id).sort()

describe('geofence index', () => {
  it('finds the zones that hold a point, and none outside them or in another fleet', () => {
    const index = new GeofenceIndex()
    index.replaceAll([
      zone('tower', polygon(square(48.85, 2.35))),
      zone('park', polygon(square(48.85, 2.355)), { kind: 'area' }),
      zone('theirs', polygon(square(48.85, 2.35)), { fleetId: 'f2' }),
    ])
    expect(ids(index.zonesAt('f1', 48.855, 2.357, T0))).toEqual(['park', 'tower'])
    expect(ids(index.zonesAt('f1', 48.855, 2.357, T0, 'no_fly'))).toEqual(['tower'])
    expect(index.zonesAt('f1', 48.855, 2.37, T0)).toEqual([])
    // Inside the bounding box of an L-shaped zone, outside the zone: turf's exact test.
    const l: [number, number][] = [
      [2.4, 48.9],
      [2.42, 48.9],
      [2.42, 48.91],
      [2.41, 48.91],
      [2.41, 48.92],
      [2.4, 48.92],
      [2.4, 48.9],
    ]
    index.replaceFleet('f3', [zone('l', polygon(l), { fleetId: 'f3' })])
    expect(ids(index.zonesAt('f3', 48.905, 2.405, T0))).toEqual(['l'])
    expect(index.zonesAt('f3', 48.915, 2.415, T0)).toEqual([])
    expect(index.zonesAt('nobody', 48.855, 2.355, T0)).toEqual([])
  })

  it('leaves out a hole, and finds either part of a multipolygon once', () => {
    const index = new GeofenceIndex()
    index.replaceAll([
      zone('ring', polygon(square(48.8, 2.3, 0.1), square(48.84, 2.34, 0.02))),
      zone('pair', {
        type: 'MultiPolygon',
        coordinates: [[square(10, 179.9, 0.05)], [square(10, -180, 0.05)]],
      }),
    ])
    expect(ids(index.zonesAt('f1', 48.81, 2.31, T0))).toEqual(['ring'])
    expect(index.zonesAt('f1', 48.85, 2.35, T0)).toEqual([])
    expect(ids(index.zonesAt('f1', 10.01, 179.92, T0))).toEqual(['pair'])
    expect(ids(index.zonesAt('f1', 10.01, -179.99, T0))).toEqual(['pair'])
    expect(index.size).toBe(2)
  })

  it('counts a zone only inside its active window: from inclusive, until exclusive', () => {
    const index = new GeofenceIndex()
    index.replaceAll([
      zone('window', polygon(square(48.85, 2.35)), { activeFrom: at(0), activeUntil: at(60) }),
      zone('from', polygon(square(48.85, 2.35)), { activeFrom: at(30) }),
      zone('until', polygon(square(48.85, 2.35)), { activeUntil: at(30) }),
    ])
    const inside = (t: Date) => ids(index.zonesAt('f1', 48.855, 2.355, t))
    expect(inside(at(-1))).toEqual(['until'])
    expect(inside(at(0))).toEqual(['until', 'window'])
    expect(inside(at(30))).toEqual(['from', 'window'])
    expect(inside(at(60))).toEqual(['from'])
  })

  it('follows what it is given again: a fleet replaced, emptied, and every fleet reloaded', () => {
    const index = new GeofenceIndex()
    index.replaceFleet('f1', [zone('a', polygon(square(48.85, 2.35)))])
    expect(ids(index.zonesAt('f1', 48.855, 2.355, T0))).toEqual(['a'])
    index.replaceFleet('f1', [zone('b', polygon(square(48.86, 2.35)))])
    expect(index.zonesAt('f1', 48.855, 2.355, T0)).toEqual([])
    expect(ids(index.zonesAt('f1', 48.865, 2.355, T0))).toEqual(['b'])
    index.replaceFleet('f1', [])
    expect(index.size).toBe(0)
    index.replaceAll([zone('c', polygon(square(48.85, 2.35)), { fleetId: 'f9' })])
    expect(ids(index.zonesAt('f9', 48.855, 2.355, T0))).toEqual(['c'])
  })

  it('tells the active no-fly zones a great-circle leg crosses, not the areas nor those it passes by', () => {
    const index = new GeofenceIndex()
    index.replaceAll([
      zone('across', polygon(square(48.845, 2.4))), // on the line 48.85 from 2.3 to 2.5
      zone('beside', polygon(square(48.87, 2.4))),
      zone('area', polygon(square(48.845, 2.42)), { kind: 'area' }),
      zone('later', polygon(square(48.845, 2.44)), { activeFrom: at(10) }),
    ])
    const crossing = (t: Date) =>
      ids(index.crossing('f1', { lat: 48.85, lon: 2.3 }, { lat: 48.85, lon: 2.5 }, t))
    expect(crossing(T0)).toEqual(['across'])
    expect(crossing(at(10))).toEqual(['across', 'later'])
    // A leg that ends inside a zone crosses it; a leg of no length is its point.
    expect(
      ids(index.crossing('f1', { lat: 48.85, lon: 2.3 }, { lat: 48.85, lon: 2.405 }, T0)),
    ).toEqual(['across'])
    expect(
      ids(index.crossing('f1', { lat: 48.85, lon: 2.405 }, { lat: 48.85, lon: 2.405 }, T0)),
    ).toEqual(['across'])
    expect(index.crossing('f1', { lat: 48.9, lon: 2.3 }, { lat: 48.9, lon: 2.5 }, T0)).toEqual([])
  })

  it('follows the great circle, not the straight line in degrees', () => {
    // From (60 N, 0) to (60 N, 90 E) the great circle bulges north to about 67.8 N: a
    // zone at 67-69 N between them is crossed, though the parallel 60 N passes far south.
    const index = new GeofenceIndex()
    index.replaceAll([
      zone('north', polygon(square(67, 44, 2))),
      zone('parallel', polygon(square(59.5, 44, 1))),
    ])
    expect(ids(index.crossing('f1', { lat: 60, lon: 0 }, { lat: 60, lon: 90 }, T0))).toEqual([
      'north',
    ])
  })

  it('gives the ingest the telemetry items inside active zones, judged at their receipt', () => {
    const index = new GeofenceIndex()
    index.replaceAll([
      zone('tower', polygon(square(48.845, 2.345)), { activeUntil: at(60) }),
      zone('park', polygon(square(48.845, 2.345)), { kind: 'area', notifyOnEnterLeave: true }),
    ])
    const item = (droneId: string, lat: number, receivedAt: Date): IngestItem => ({
      kind: 'telemetry',
      fleetId: 'f1',
      droneId,
      receivedAt,
      msg: { ...telemetryAt(T0.getTime()), lat },
    })
    const hits = index.breachesIn([
      item('inside', 48.85, T0),
      item('outside', 48.9, T0),
      item('late', 48.85, at(60)),
      { kind: 'drone-status', fleetId: 'f1', droneId: 'x', receivedAt: T0, msg: {} as never },
    ])
    expect(hits.map((h) => [h.droneId, ids(h.zones)])).toEqual([
      ['inside', ['park', 'tower']],
      ['late', ['park']],
    ])
    expect(hits[0]).toMatchObject({ fleetId: 'f1', lat: 48.85, lon: 2.35, ts: T0.getTime() })
    expect(new GeofenceIndex().breachesIn([item('inside', 48.85, T0)])).toEqual([])
  })
})
