import { describe, expect, it } from 'vitest'
import { DEMAND_UTILISATION, defaultDemandPerMin, fleetCapacity } from '../src/capacity.ts'
import { loadConfig } from '../src/config.ts'
import { signedTokens } from '../src/credentials.ts'
import { DroneModel } from '../src/drone-model.ts'
import type { ModelEvent, Stop } from '../src/drone-model.ts'
import { Fleet } from '../src/fleet.ts'
import { MAX_WIND_MPS } from '../src/flight.ts'
import { destinationPoint } from '../src/geo.ts'

// Two stations 3 km apart and a drone cruising at 15 m/s in still air. One leg takes
// 25 s climbing (100 m at 4 m/s), 200 s cruising, 33.3 s descending; it drains
// 0.03 %/s x 258.3 s + 1.5 %/km x 3 km = 12.25 %, charged back in 49 s at 0.25 %/s.
const A: Stop = { stationId: 'a', lat: 48.8566, lon: 2.3522 }
const B: Stop = { stationId: 'b', ...destinationPoint(A, 60, 3000) }
const LEG_S = 25 + 200 + 100 / 3
const LEG_PCT = 0.03 * LEG_S + 1.5 * 3
const START = Date.UTC(2026, 10, 24, 12)

describe("the fleet's capacity", () => {
  it('is what a drone of the model flies: each leg as long and draining as much as the model says', () => {
    const model = new DroneModel('d', A, 15, 100, START)
    const calm = { speedMps: 0, toDeg: 0 }
    // Picks up at B (a leg from A), delivers back to A (a second leg).
    model.assign('del', B, A, START)
    const events: ModelEvent[] = []
    for (let s = 1; !events.some((e) => e.type === 'delivery.completed') && s < 3600; s++)
      events.push(...model.advance(START + s * 1000, calm))
    const at = (type: string) => (events.find((e) => e.type === type)?.atMs ?? NaN) - START
    expect(at('delivery.picked_up') / 1000).toBeCloseTo(LEG_S, 1)
    expect(at('delivery.completed') / 1000).toBeCloseTo(2 * LEG_S, 1)
    expect(model.batteryPct).toBeCloseTo(100 - 2 * LEG_PCT, 0)
    // Ten seconds on the station charge 2.5 % back.
    model.advance(START + at('delivery.completed') + 10_000, calm)
    expect(model.batteryPct).toBeCloseTo(100 - 2 * LEG_PCT + 2.5, 6)
  })

  it('counts both legs, charging the battery back, and the wait for the dispatcher', () => {
    // From a random station the drone is at the pick-up half the time (2 stations).
    const cycleS = 0.5 * LEG_S + LEG_S + (1.5 * LEG_PCT) / 0.25 + 0.5
    const capacity = fleetCapacity({ stations: [A, B], cruiseMps: [15], timeScale: 1, windMps: 0 })
    expect(capacity.cycleS).toBeCloseTo(cycleS, 1)
    expect(capacity.perHour).toBeCloseTo(3600 / cycleS, 2)
    // At x60 a dispatcher round (1 wall-clock s) is a simulated minute: 30 s more each.
    const x60 = fleetCapacity({ stations: [A, B], cruiseMps: [15], timeScale: 60, windMps: 0 })
    expect(x60.cycleS).toBeCloseTo(cycleS + 29.5, 1)
  })

  it('grows with the drones, and the default demand with it, below the capacity', () => {
    const one = { stations: [A, B], cruiseMps: [15, 13], timeScale: 60 }
    const two = { ...one, cruiseMps: [15, 13, 15, 13] }
    expect(fleetCapacity(two).perHour).toBeCloseTo(2 * fleetCapacity(one).perHour, 6)
    expect(defaultDemandPerMin(two)).toBeCloseTo(2 * defaultDemandPerMin(one), 6)
    // Per station per minute: all stations together ask for 70% of the capacity.
    const asked = defaultDemandPerMin(one) * 60 * 2
    expect(asked).toBeCloseTo(DEMAND_UTILISATION * fleetCapacity(one).perHour, 6)
    expect(asked).toBeLessThan(fleetCapacity(one).perHour)
    expect(defaultDemandPerMin({ ...one, cruiseMps: [] })).toBe(0)
  })

  it('falls in a wind: a head wind costs more than a tail wind gives back', () => {
    const at = (windMps: number) =>
      fleetCapacity({ stations: [A, B], cruiseMps: [15], timeScale: 1, windMps }).perHour
    expect(at(5)).toBeLessThan(at(0))
    expect(at(MAX_WIND_MPS)).toBeLessThan(at(5))
    const mixed = fleetCapacity({ stations: [A, B], cruiseMps: [15], timeScale: 1 }).perHour
    expect(mixed).toBeLessThan(at(0))
    expect(mixed).toBeGreaterThan(at(MAX_WIND_MPS))
  })
})

describe("the simulator's default demand", () => {
  const fleetOf = (argv: string[]) => {
    const config = loadConfig(argv, {})
    expect(config.demandPerMin).toEqual(argv.includes('--demand') ? expect.any(Number) : undefined)
    return Fleet.create({ ...config, tokens: signedTokens('x'.repeat(32)) })
  }
  const layout = (fleet: Fleet) => ({
    stations: fleet.stations.map((s) => s.stop),
    cruiseMps: fleet.drones.map((d) => d.model.params.cruiseMps),
    timeScale: 60,
  })

  it('keeps the demo fleet below what it can fly, even in the strongest wind', () => {
    const fleet = fleetOf(['--time-scale', '60'])
    const askedPerHour = fleet.demandPerMin * 60 * fleet.stations.length
    expect(fleet.demandPerMin).toBeCloseTo(defaultDemandPerMin(layout(fleet)), 9)
    expect(askedPerHour).toBeCloseTo(DEMAND_UTILISATION * fleet.capacity.perHour, 6)
    const stormy = fleetCapacity({ ...layout(fleet), windMps: MAX_WIND_MPS })
    expect(askedPerHour).toBeLessThan(stormy.perHour)
  })

  it('follows the fleet: twice the drones, about twice the demand', () => {
    const twelve = fleetOf(['--time-scale', '60'])
    const twentyFour = fleetOf(['--time-scale', '60', '--drones', '24'])
    // Same stations (the layout comes first from the seed); 12 more drones of random speeds.
    expect(twentyFour.stations.map((s) => s.stop)).toEqual(twelve.stations.map((s) => s.stop))
    const ratio = twentyFour.demandPerMin / twelve.demandPerMin
    expect(ratio).toBeGreaterThan(1.8)
    expect(ratio).toBeLessThan(2.2)
  })

  it('gives way to --demand', () => {
    expect(fleetOf(['--demand', '1']).demandPerMin).toBe(1)
    expect(fleetOf(['--demand', '0']).demandPerMin).toBe(0)
  })
})
