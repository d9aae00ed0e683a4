import { describe, expect, it } from 'vitest'
import { DESCENT_MPS, EtaEstimator } from '../src/delivery/eta.ts'

const dropoff = { lat: 48.9, lon: 2.35 }
// 0.01° of latitude is about 1,112 m.
const at = (lat: number, ts: number, speedMps: number) => ({
  deliveryId: 'd1',
  fleetId: 'f1',
  ts,
  lat,
  lon: 2.35,
  altM: 100,
  speedMps,
  state: 'en_route',
})

describe('ETA', () => {
  it('is the remaining distance over the ground speed plus the landing', () => {
    const eta = new EtaEstimator().estimate(at(48.89, 0, 10), dropoff)!
    expect(eta / 1000).toBeCloseTo(1111.95 / 10 + 100 / DESCENT_MPS, 0)
  })

  it('smooths the speed, so one gust does not swing it', () => {
    const e = new EtaEstimator()
    e.estimate(at(48.88, 0, 10), dropoff)
    const withGust = e.estimate(at(48.881, 100_000, 30), dropoff)!
    const raw = 100_000 + (((dropoff.lat - 48.881) * 111_195) / 30 + 100 / DESCENT_MPS) * 1000
    const steady = 100_000 + (((dropoff.lat - 48.881) * 111_195) / 10 + 100 / DESCENT_MPS) * 1000
    expect(withGust).toBeGreaterThan(raw)
    expect(withGust).toBeLessThan(steady)
  })

  it('keeps the last speed while the drone hovers', () => {
    const e = new EtaEstimator()
    const moving = e.estimate(at(48.89, 0, 10), dropoff)!
    expect(e.estimate(at(48.89, 0, 0), dropoff)).toBeCloseTo(moving, 0)
    expect(new EtaEstimator().estimate(at(48.89, 0, 0), dropoff)).toBeUndefined()
  })
})
