import { describe, expect, it } from 'vitest'
import type { GeofenceView } from '@skyline/schemas'
import { ZoneStore, isActive, nextWindowEdge } from '../src/zones.ts'

// The page's zones (issue 18): which hold when (a window's start inclusive, its end
// exclusive, as the api judges them), when the map must look again, and one reader of
// GET /api/geofences however often the live stream says they changed.

const zone = (id: string, activeFrom: string | null, activeUntil: string | null): GeofenceView => ({
  id,
  fleetId: 'f1',
  name: id,
  kind: 'no_fly',
  geometry: {
    type: 'Polygon',
    coordinates: [
      [
        [2.35, 48.85],
        [2.36, 48.85],
        [2.36, 48.86],
        [2.35, 48.85],
      ],
    ],
  },
  activeFrom,
  activeUntil,
  notifyOnEnterLeave: false,
  createdAt: '2030-01-01T00:00:00.000Z',
  updatedAt: '2030-01-01T00:00:00.000Z',
})

const at = (iso: string) => Date.parse(iso)

describe('zone windows', () => {
  it('holds from its start (inclusive) until its end (exclusive); an open end is no bound', () => {
    const z = zone('z', '2030-06-01T18:00:00.000Z', '2030-06-01T23:00:00.000Z')
    expect(isActive(z, at('2030-06-01T17:59:59.999Z'))).toBe(false)
    expect(isActive(z, at('2030-06-01T18:00:00.000Z'))).toBe(true)
    expect(isActive(z, at('2030-06-01T22:59:59.999Z'))).toBe(true)
    expect(isActive(z, at('2030-06-01T23:00:00.000Z'))).toBe(false)
    expect(isActive(zone('always', null, null), 0)).toBe(true)
    expect(isActive(zone('until', null, '2030-01-01T00:00:00Z'), at('2031-01-01T00:00:00Z'))).toBe(
      false,
    )
  })

  it('names the next start or end still to come, over every zone', () => {
    const zones = [
      zone('a', '2030-06-01T18:00:00.000Z', '2030-06-01T23:00:00.000Z'),
      zone('b', null, '2030-06-01T20:00:00.000Z'),
      zone('c', null, null),
    ]
    expect(nextWindowEdge(zones, at('2030-06-01T12:00:00Z'))).toBe(at('2030-06-01T18:00:00Z'))
    expect(nextWindowEdge(zones, at('2030-06-01T18:00:00Z'))).toBe(at('2030-06-01T20:00:00Z'))
    expect(nextWindowEdge(zones, at('2030-06-01T21:00:00Z'))).toBe(at('2030-06-01T23:00:00Z'))
    expect(nextWindowEdge(zones, at('2030-06-02T00:00:00Z'))).toBeUndefined()
  })
})

describe('ZoneStore', () => {
  it('reads once more after a read on its way, not once per notice, and keeps what the editor put', async () => {
    let reads = 0
    const answers: ((zones: GeofenceView[]) => void)[] = []
    const store = new ZoneStore(
      () => {
        reads++
        return new Promise((resolve) => answers.push(resolve))
      },
      () => undefined,
    )
    let changes = 0
    store.onChange(() => changes++)
    const first = store.load()
    // Three notices while the first read is on its way: one more read, after it.
    void store.load()
    void store.load()
    const last = store.load()
    expect(reads).toBe(1)
    answers[0]!([zone('old', null, null)])
    await expect.poll(() => reads).toBe(2)
    answers[1]!([zone('a', null, null), zone('b', null, null)])
    await Promise.all([first, last])
    expect(reads).toBe(2)
    expect([...store.zones.keys()]).toEqual(['a', 'b'])
    expect(changes).toBe(2)

    store.put(zone('c', null, null))
    store.remove('a')
    store.remove('nothing')
    expect([...store.zones.keys()]).toEqual(['b', 'c'])
    expect(changes).toBe(4)
    expect(store.fleets()).toEqual(['f1'])
  })

  it('tells a failed read and keeps the zones it had', async () => {
    const errors: string[] = []
    let fail = false
    const store = new ZoneStore(
      () =>
        fail
          ? Promise.reject(new Error('503 database_unavailable'))
          : Promise.resolve([zone('a', null, null)]),
      (m) => errors.push(m),
    )
    await store.load()
    fail = true
    await store.load()
    expect(errors).toEqual(['zones: 503 database_unavailable'])
    expect([...store.zones.keys()]).toEqual(['a'])
  })
})
