import { describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.ts'

describe('the live stream limits', () => {
  it('have defaults, and refuse values that are not positive whole numbers', () => {
    const config = loadConfig({})
    expect(config.LIVE_MAX_CLIENTS).toBe(1_000)
    expect(config.LIVE_MAX_CLIENTS_PER_ADDRESS).toBe(50)
    expect(config.LIVE_SEND_BUDGET_BYTES).toBe(2 ** 20)
    expect(config.LIVE_MAX_LAG_MS).toBe(5_000)
    for (const name of ['LIVE_MAX_CLIENTS', 'LIVE_MAX_CLIENTS_PER_ADDRESS', 'LIVE_MAX_LAG_MS']) {
      expect(() => loadConfig({ [name]: '0' }), name).toThrow(new RegExp(name))
      expect(() => loadConfig({ [name]: 'many' }), name).toThrow(new RegExp(name))
    }
    expect(() => loadConfig({ LIVE_SEND_BUDGET_BYTES: '1000' })).toThrow(/LIVE_SEND_BUDGET_BYTES/)
  })
})
