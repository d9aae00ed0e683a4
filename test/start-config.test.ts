import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig as loadSimConfig } from '../apps/drone-sim/src/config.ts'
import { apiEnvFor, loadStartConfig, simArgs } from '../scripts/start-config.ts'

describe("npm start's configuration", () => {
  it('applies the documented defaults', () => {
    expect(loadStartConfig({})).toEqual({
      dataDir: resolve('data'),
      httpPort: 3000,
      sim: { SIM_DRONES: 12, SIM_STATIONS: 4, SIM_TIME_SCALE: 1 },
    })
    expect(loadStartConfig({ SIM_DRONES: '', DATA_DIR: '/tmp/x' })).toMatchObject({
      dataDir: '/tmp/x',
      sim: { SIM_DRONES: 12 },
    })
  })

  it.each([
    [{ SIM_DRONES: 'many' }, 'SIM_DRONES'],
    [{ SIM_DRONES: '2.5' }, 'SIM_DRONES'],
    [{ SIM_STATIONS: '1' }, 'SIM_STATIONS'],
    [{ SIM_TIME_SCALE: '0' }, 'SIM_TIME_SCALE'],
    [{ SIM_DEMAND: 'lots' }, 'SIM_DEMAND'],
    [{ HTTP_PORT: 'http' }, 'HTTP_PORT'],
  ])('rejects %o naming %s', (env, variable) => {
    expect(() => loadStartConfig(env)).toThrow(new RegExp(`${variable}: `))
  })

  // Its bounds are checked before anything starts, so they must be the simulator's.
  it.each([
    ['SIM_DRONES', '0', '100000', '100001'],
    ['SIM_STATIONS', '2', '1000', '1'],
    ['SIM_TIME_SCALE', '0.01', '10000', '10001'],
    ['SIM_DEMAND', '0', '600', '601'],
  ])('accepts exactly the %s values the simulator accepts', (variable, low, high, out) => {
    for (const value of [low, high]) {
      const { sim } = loadStartConfig({ [variable]: value })
      expect(() => loadSimConfig(simArgs(sim), {}), `${variable}=${value}`).not.toThrow()
    }
    expect(() => loadStartConfig({ [variable]: out })).toThrow(variable)
    const flag =
      { SIM_DRONES: '--drones', SIM_STATIONS: '--stations', SIM_DEMAND: '--demand' }[variable] ??
      '--time-scale'
    expect(() => loadSimConfig([flag, out], {})).toThrow(flag)
  })

  it("leaves the demand to the simulator's sizing unless SIM_DEMAND is set", () => {
    const demand = (env: Record<string, string>) =>
      loadSimConfig(simArgs(loadStartConfig(env).sim), {}).demandPerMin
    expect(demand({})).toBeUndefined()
    expect(demand({ SIM_DEMAND: '' })).toBeUndefined()
    expect(demand({ SIM_DEMAND: '0.5' })).toBe(0.5)
    expect(demand({ SIM_DEMAND: '0' })).toBe(0)
  })

  it("widens the api's device clock window for a time-scaled demo, unless it is set", () => {
    const sim = (scale: string) => loadStartConfig({ SIM_TIME_SCALE: scale }).sim
    expect(apiEnvFor(sim('1'), {})).toEqual({})
    // At x10 the demo's clock is 9 weeks ahead after a week.
    expect(apiEnvFor(sim('10'), {})).toEqual({
      DEVICE_CLOCK_AHEAD_MAX_S: String(9 * 7 * 86_400 + 300),
    })
    expect(apiEnvFor(sim('10'), { DEVICE_CLOCK_AHEAD_MAX_S: '60' })).toEqual({})
  })
})
