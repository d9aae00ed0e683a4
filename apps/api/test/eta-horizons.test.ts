import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { EtaHorizons, HISTORY_STEP_MS } from '../src/delivery/eta-horizons.ts'
import type { EtaObservation } from '../src/delivery/eta-horizons.ts'

const T0 = Date.UTC(2026, 0, 1)
const S = 1000

/**
 * A synthetic flight on the drone's clock: `distanceM` at a constant `mps`, one point
 * every `everyMs`, each ETA marked with the time it was computed (ts + 10^9) so a test
 * can tell which one was picked.
 */
function* flight(distanceM: number, mps: number, everyMs: number, id = 'd1') {
  const durationMs = (distanceM / mps) * S
  for (let t = 0; t < durationMs; t += everyMs)
    yield {
      deliveryId: id,
      ts: T0 + t,
      etaAt: T0 + t + 1e9,
      remainingM: distanceM - (mps * t) / S,
      distanceM,
      first: t === 0,
    } satisfies EtaObservation
}

const fly = (h: EtaHorizons, points: Iterable<EtaObservation>) =>
  [...points].flatMap((p) => h.observe(p)).map((r) => [r.horizon, r.predictedAt - T0])

const arrive = (h: EtaHorizons, arrivedAtMs: number, id = 'd1') =>
  h
    .atArrival(id, T0 + arrivedAtMs)
    .map((r) => [r.horizon, r.predictedAt - T0, r.etaAt - r.predictedAt])

describe('ETA horizons', () => {
  it('takes the first ETA, the first at half the distance, and those in force 5 and 1 minutes before the arrival', () => {
    const h = new EtaHorizons()
    // 6 km at 10 m/s, a point every second: 600 s, half-way at 300 s.
    expect(fly(h, flight(6000, 10, S))).toEqual([
      ['departure', 0],
      ['half', 300 * S],
    ])
    // It lands 20 s after the last point: 5 min before is 320 s, 1 min before 560 s.
    expect(arrive(h, 619 * S)).toEqual([
      ['t-5min', 319 * S, 1e9],
      ['t-1min', 559 * S, 1e9],
    ])
  })

  it('gives no 5-minute horizon to a flight shorter than 5 minutes', () => {
    const h = new EtaHorizons()
    fly(h, flight(2000, 10, 10 * S)) // 200 s
    expect(arrive(h, 200 * S).map(([horizon]) => horizon)).toEqual(['t-1min'])
    expect(arrive(h, 30 * S)).toEqual([])
  })

  it('takes the half-distance ETA only where it saw the crossing', () => {
    const points = [...flight(6000, 10, 10 * S)]
    // The api restarted in the second half: the first ETA it computes is not half-way's.
    const late = new EtaHorizons()
    expect(
      fly(
        late,
        points.slice(31).map((p) => ({ ...p, first: false })),
      ),
    ).toEqual([])
    // ... but in the first half it sees the crossing.
    const early = new EtaHorizons()
    expect(
      fly(
        early,
        points.slice(20).map((p) => ({ ...p, first: false })),
      ),
    ).toEqual([['half', 300 * S]])
    // A hop whose first ETA is already within half the distance: that one is both.
    const hop = new EtaHorizons()
    expect(fly(hop, [{ ...points[0]!, remainingM: 2000 }])).toEqual([
      ['departure', 0],
      ['half', 0],
    ])
    // Without the distance (no dispatch), there is no half-way.
    const unknown = new EtaHorizons()
    expect(
      fly(
        unknown,
        points.map((p) => ({ ...p, distanceM: null })),
      ),
    ).toEqual([['departure', 0]])
  })

  it('answers the same for a point observed again (a batch written twice), and ignores a late one', () => {
    const h = new EtaHorizons()
    const points = [...flight(6000, 10, 10 * S)]
    for (const p of points.slice(0, 31)) h.observe(p)
    const crossing = points[30]!
    expect(h.observe(crossing).map((r) => r.horizon)).toEqual(['half'])
    expect(h.observe({ ...points[29]!, etaAt: 0 })).toEqual([])
    expect(h.atArrival('d1', crossing.ts + 60 * S)).toEqual([
      { deliveryId: 'd1', horizon: 't-5min', predictedAt: points[6]!.ts, etaAt: points[6]!.etaAt },
      { deliveryId: 'd1', horizon: 't-1min', predictedAt: crossing.ts, etaAt: crossing.etaAt },
    ])
  })

  it('keeps one ETA a step, within a step of the true one, and forgets what no horizon can need', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 30 * S }),
        fc.integer({ min: 0, max: 3600 * S }),
        (everyMs, landingMs) => {
          const h = new EtaHorizons()
          const points = [...flight(36_000, 10, everyMs)] // an hour
          fly(h, points)
          const arrivedAt = points.at(-1)!.ts - T0 + landingMs
          const found = arrive(h, arrivedAt)
          for (const [horizon, beforeMs] of [
            ['t-5min', 300 * S],
            ['t-1min', 60 * S],
          ] as const) {
            const moment = T0 + arrivedAt - beforeMs
            const truth = points.findLast((p) => p.ts <= moment)
            const got = found.find(([name]) => name === horizon)
            // Up to 5 minutes before the last point, the history must hold it.
            if (truth !== undefined && moment >= points.at(-1)!.ts - 300 * S)
              expect(got, horizon).toBeDefined()
            if (got === undefined) continue
            const at = T0 + (got[1] as number)
            expect(at).toBeLessThanOrEqual(moment)
            expect(truth!.ts - at).toBeLessThan(HISTORY_STEP_MS)
          }
        },
      ),
      { numRuns: 50 },
    )
    const h = new EtaHorizons()
    fly(h, flight(36_000, 10, 100))
    // The ETAs of the first 55 minutes are gone: an arrival then finds none.
    expect(arrive(h, 3000 * S)).toEqual([])
    h.forget('d1')
    expect(h.size).toBe(0)
  })
})
