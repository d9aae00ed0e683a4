import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { DroneModel } from '../src/drone-model.ts'
import type { ModelEvent, Stop } from '../src/drone-model.ts'
import { BATTERY, DEFAULT_FLIGHT, drainPct, flightTimeS } from '../src/flight.ts'
import { bearingDeg, distanceM } from '../src/geo.ts'

// The flight model driven the way the fleet drives it: a timer ticks, simulated time
// is the wall clock times the time scale. Fake timers make the wall clock ours.
const A: Stop = { stationId: 'a', lat: 48.8566, lon: 2.3522 }
const B: Stop = { stationId: 'b', lat: 48.8566 + 0.03, lon: 2.3522 + 0.04 } // about 4.5 km north-east
const C: Stop = { stationId: 'c', lat: 48.8566 - 0.02, lon: 2.3522 + 0.01 }
const CALM = { speedMps: 0, toDeg: 0 }
const CRUISE = 15
const START = Date.UTC(2026, 10, 24, 12)

/** Ticks `model` every `tickMs` of (fake) wall clock until `until` holds; returns the events. */
function fly(
  model: DroneModel,
  scale: number,
  until: (e: ModelEvent[]) => boolean,
  wind = CALM,
  tickMs = 100,
) {
  const events: ModelEvent[] = []
  const simNow = () => START + (Date.now() - START) * scale
  const timer = setInterval(() => events.push(...model.advance(simNow(), wind)), tickMs)
  for (let i = 0; i < 1_000_000 && !until(events); i++) vi.advanceTimersByTime(tickMs)
  clearInterval(timer)
  return events
}

describe('drone flight model', () => {
  beforeEach(() => {
    vi.useFakeTimers()
    vi.setSystemTime(START)
  })
  afterEach(() => vi.useRealTimers())

  it('flies a delivery: events in order, on time, the right distance and heading', () => {
    const model = new DroneModel('d1', A, CRUISE, 100, START)
    const accepted = model.assign('del-1', A, B, START)
    expect(accepted.map((e) => e.type)).toEqual([
      'delivery.accepted',
      'delivery.picked_up',
      'delivery.departed',
    ])
    expect(model.state).toBe('en_route')

    let headingInCruise: number | undefined
    const events = fly(model, 1, (e) => {
      if (model.altM === DEFAULT_FLIGHT.cruiseAltM && model.speedMps > 0)
        headingInCruise ??= model.headingDeg
      return e.some((x) => x.type === 'delivery.completed')
    })
    expect(events.map((e) => e.type)).toEqual(['delivery.arrived', 'delivery.completed'])
    const dist = distanceM(A, B)
    const expectedS = flightTimeS(dist, model.params)
    // The landing is timed inside the tick, not at its end.
    expect((events[0]!.atMs - START) / 1000).toBeCloseTo(expectedS, 1)
    expect(headingInCruise).toBeCloseTo(bearingDeg(A, B), 0)
    expect(distanceM(model.pos, B)).toBeLessThan(0.5)
    expect(model.dockedAt).toBe('b')
    expect(model.state).toBe('charging')
    expect(model.batteryPct).toBeCloseTo(100 - drainPct(expectedS, dist), 0)
  })

  it('flies to the pick-up first when it is docked elsewhere', () => {
    const model = new DroneModel('d1', C, CRUISE, 100, START)
    expect(model.assign('del-2', A, B, START).map((e) => e.type)).toEqual(['delivery.accepted'])
    expect(model.state).toBe('to_pickup')
    const events = fly(model, 20, (e) => e.some((x) => x.type === 'delivery.completed'))
    expect(events.map((e) => e.type)).toEqual([
      'delivery.picked_up',
      'delivery.departed',
      'delivery.arrived',
      'delivery.completed',
    ])
    const expectedS =
      flightTimeS(distanceM(C, A), model.params) + flightTimeS(distanceM(A, B), model.params)
    expect((events.at(-1)!.atMs - START) / 1000).toBeCloseTo(expectedS, 0)
  })

  it('runs a time scale of 60 sixty times faster on the wall clock', () => {
    const model = new DroneModel('d1', A, CRUISE, 100, START)
    model.assign('del-3', A, B, START)
    fly(model, 60, (e) => e.some((x) => x.type === 'delivery.completed'))
    const wallS = (Date.now() - START) / 1000
    expect(wallS).toBeCloseTo(flightTimeS(distanceM(A, B), model.params) / 60, 0)
  })

  it('goes faster with a tail wind and slower into a head wind', () => {
    const times = [0, 180].map((windOffset) => {
      vi.setSystemTime(START)
      const model = new DroneModel('d1', A, CRUISE, 100, START)
      model.assign('del-w', A, B, START)
      const wind = { speedMps: 5, toDeg: bearingDeg(A, B) + windOffset }
      const e = fly(model, 10, (x) => x.some((y) => y.type === 'delivery.arrived'), wind)
      return e[0]!.atMs - START
    })
    expect(times[0]!).toBeLessThan(times[1]!)
  })

  it('refuses an assignment its battery cannot fly', () => {
    const model = new DroneModel('d1', A, CRUISE, 18, START)
    const [refusal] = model.assign('del-4', A, B, START)
    expect(refusal).toMatchObject({ type: 'delivery.failed', deliveryId: 'del-4' })
    expect(refusal!.detail).toMatch(/^insufficient_battery/)
    expect(model.state).toBe('charging')
  })

  it('reports battery.low once when the battery crosses the threshold', () => {
    // Enough to be accepted (flight plus reserve), not enough to land above the threshold.
    const model = new DroneModel('d1', A, CRUISE, 36, START)
    model.assign('del-5', A, B, START)
    const events = fly(model, 20, (e) => e.some((x) => x.type === 'delivery.completed'))
    expect(events.filter((e) => e.type === 'battery.low')).toHaveLength(1)
  })

  it('charges on a station until full, then is idle', () => {
    const model = new DroneModel('d1', A, CRUISE, 50, START)
    expect(model.state).toBe('charging')
    fly(model, 1, () => model.batteryPct >= 100)
    expect((Date.now() - START) / 1000).toBeCloseTo(50 / BATTERY.chargePctPerS, -1)
    expect(model.state).toBe('idle')
  })

  it('stops a cancelled delivery and returns to base', () => {
    const model = new DroneModel('d1', C, CRUISE, 100, START)
    model.assign('del-6', A, B, START)
    fly(model, 10, () => model.altM > 50)
    const [cancelled] = model.cancel('del-6', C, START)
    expect(cancelled).toMatchObject({
      type: 'delivery.failed',
      deliveryId: 'del-6',
      detail: 'cancelled',
    })
    expect(model.state).toBe('returning')
    fly(model, 10, () => model.dockedAt === 'c')
    expect(model.mission).toBeUndefined()
  })

  it('refuses a second delivery while busy', () => {
    const model = new DroneModel('d1', A, CRUISE, 100, START)
    model.assign('del-7', A, B, START)
    expect(model.assign('del-8', A, C, START)[0]).toMatchObject({
      type: 'delivery.failed',
      detail: 'busy with delivery del-7',
    })
  })
})
