import { describe, expect, it } from 'vitest'
import {
  bearingDeg,
  destinationPoint,
  distanceM,
  moveToward,
  randomPointWithin,
} from '../src/geo.ts'
import { seededRandom } from '../src/random.ts'

const paris = { lat: 48.8566, lon: 2.3522 }
const london = { lat: 51.5074, lon: -0.1278 }

describe('great-circle geometry', () => {
  it('measures Paris to London as about 343.5 km', () => {
    expect(distanceM(paris, london) / 1000).toBeCloseTo(343.5, 0)
  })

  it('heads north-west from Paris to London, and due east along the equator', () => {
    expect(bearingDeg(paris, london)).toBeCloseTo(330.0, 0)
    expect(bearingDeg({ lat: 0, lon: 0 }, { lat: 0, lon: 1 })).toBeCloseTo(90, 6)
  })

  it('lands where it aimed: destinationPoint inverts distance and bearing', () => {
    const there = destinationPoint(paris, bearingDeg(paris, london), distanceM(paris, london))
    expect(distanceM(there, london)).toBeLessThan(0.01)
  })

  it('moves the given distance towards the target and stops on it', () => {
    const step = moveToward(paris, london, 10_000)
    expect(distanceM(paris, step)).toBeCloseTo(10_000, 3)
    expect(distanceM(step, london)).toBeCloseTo(distanceM(paris, london) - 10_000, 0)
    expect(moveToward(paris, london, 1e9)).toEqual(london)
  })

  it('spreads random points inside the radius', () => {
    const random = seededRandom(7)
    const points = Array.from({ length: 500 }, () => randomPointWithin(paris, 5_000, random))
    expect(Math.max(...points.map((p) => distanceM(paris, p)))).toBeLessThanOrEqual(5_000.001)
    // Uniform over the disc: about a quarter of the points within half the radius.
    const inner = points.filter((p) => distanceM(paris, p) < 2_500).length / points.length
    expect(inner).toBeGreaterThan(0.18)
    expect(inner).toBeLessThan(0.32)
  })
})
