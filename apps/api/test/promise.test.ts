// The time promised at assignment (apps/api/src/delivery/promise.ts), on the drone's clock.
import { describe, expect, it } from 'vitest'
import {
  PROMISE_GROUND_MPS,
  PROMISE_LEG_OVERHEAD_S,
  droneClockAt,
  promisedAt,
} from '../src/delivery/promise.ts'
import { distanceM } from '../src/geo.ts'

const T0 = new Date('2026-05-01T10:00:00Z')
const at = (s: number) => new Date(T0.getTime() + s * 1000)
const pickup = { lat: 48.85, lon: 2.35 }
const dropoff = { lat: 48.86, lon: 2.35 }

describe('the promise', () => {
  it("reads the drone's clock as its newest point moved on by the time since it was heard", () => {
    expect(droneClockAt(at(10), at(500), at(4))).toBe(at(506).getTime())
    // Heard "later" than now (another instance's clock): not moved back.
    expect(droneClockAt(at(10), at(500), at(12))).toBe(at(500).getTime())
    // No point yet: the api's clock.
    expect(droneClockAt(at(10), null, null)).toBe(at(10).getTime())
  })

  it('promises both legs at the assumed ground speed, each with its take-off and landing', () => {
    const drone = { lat: 48.84, lon: 2.35, positionAt: T0, lastSeenAt: T0 }
    const legsM = distanceM(drone, pickup) + distanceM(pickup, dropoff)
    const expected = legsM / PROMISE_GROUND_MPS + 2 * PROMISE_LEG_OVERHEAD_S
    expect((promisedAt(T0, drone, pickup, dropoff).getTime() - T0.getTime()) / 1000).toBeCloseTo(
      expected,
      2,
    )
    // Docked at the pick-up (or nowhere known): one leg.
    const docked = { ...pickup, positionAt: T0, lastSeenAt: T0 }
    const one = distanceM(pickup, dropoff) / PROMISE_GROUND_MPS + PROMISE_LEG_OVERHEAD_S
    expect((promisedAt(T0, docked, pickup, dropoff).getTime() - T0.getTime()) / 1000).toBeCloseTo(
      one,
      2,
    )
    const nowhere = { lat: null, lon: null, positionAt: null, lastSeenAt: null }
    expect(promisedAt(T0, nowhere, pickup, dropoff)).toEqual(
      promisedAt(T0, docked, pickup, dropoff),
    )
  })
})
