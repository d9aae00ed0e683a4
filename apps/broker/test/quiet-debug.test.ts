import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { installQuietDebug, quietDebug } from '../src/quiet-debug.ts'
import type { DebugFactory, DebugLogger } from '../src/quiet-debug.ts'

// The `debug` package as mqtt-packet requires it (the broker does not depend on it itself).
const fromMqttPacket = createRequire(createRequire(import.meta.url).resolve('mqtt-packet'))
type Real = DebugFactory & {
  enable(namespaces: string): void
  disable(): string
  default: DebugFactory
}
const real = fromMqttPacket('debug') as Real

/**
 * Runs `f` with a quietDebug over `real` and exactly `namespaces` switched on, then
 * restores what DEBUG had on.
 */
function withDebug(namespaces: string, f: (debug: DebugFactory) => void): void {
  const before = real.disable()
  real.enable(namespaces)
  try {
    f(quietDebug(real))
  } finally {
    real.enable(before)
  }
}

const ownLogger = (log: DebugLogger) => typeof (log as { useColors?: unknown }).useColors

describe('quietDebug', () => {
  it('hands out a logger that does nothing for a namespace that is off', () => {
    withDebug('', (debug) => {
      const log = debug('mqtt-packet:parser')
      expect(log.enabled).toBe(false)
      // debug's own loggers carry their colour settings; the silent one has none.
      expect(ownLogger(log)).toBe('undefined')
      expect(ownLogger(real('mqtt-packet:parser'))).toBe('boolean')
      expect(() => log('parse: %o', { cmd: 'publish' })).not.toThrow()
      expect((debug as unknown as Real).default('mqtt-packet:parser').enabled).toBe(false)
    })
  })

  it("hands out debug's own logger for a namespace that is on, extended ones too", () => {
    withDebug('skyline-test:*', (debug) => {
      const on = debug('skyline-test:a')
      expect(on.enabled).toBe(true)
      expect(ownLogger(on)).toBe('boolean')
      expect(debug('skyline-other').extend('a').enabled).toBe(false)
      expect(debug('skyline').extend('a', '-').enabled).toBe(false)
      expect(debug('skyline-test').extend('b').enabled).toBe(true)
    })
  })
})

describe('installQuietDebug', () => {
  it('refuses once mqtt-packet is loaded: its loggers would stay as they are', () => {
    createRequire(import.meta.url)('mqtt-packet')
    expect(() => installQuietDebug()).toThrow(/mqtt-packet is loaded already/)
  })
})
