import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { quietDebugFor } from '../src/quiet-debug.ts'

interface Logger {
  (...args: unknown[]): void
  enabled: boolean
  useColors?: boolean
  extend(sub: string): Logger
}
type Factory = ((namespace: string) => Logger) & { enable(namespaces: string): void }

// The `debug` that mqtt-packet's own require finds.
const requireFromMqttPacket = createRequire(createRequire(import.meta.url).resolve('mqtt-packet'))
const debugOfMqttPacket = () => requireFromMqttPacket('debug') as Factory

describe('quietDebugFor', () => {
  it('gives mqtt-packet a logger that does nothing for a namespace DEBUG leaves off', () => {
    quietDebugFor('mqtt-packet')
    const log = debugOfMqttPacket()('mqtt-packet:parser')
    expect(log.enabled).toBe(false)
    // debug's own loggers carry their colour settings; the silent one has none.
    expect(log.useColors).toBeUndefined()
    expect(log.extend('more').enabled).toBe(false)
    expect(() => log('parse: %o', { cmd: 'publish' })).not.toThrow()
  })

  it("gives debug's own logger for a namespace that is switched on", () => {
    quietDebugFor('mqtt-packet')
    const debug = debugOfMqttPacket()
    debug.enable('skyline-quiet-debug-test')
    try {
      const log = debug('skyline-quiet-debug-test')
      expect(log.enabled).toBe(true)
      expect(typeof log.useColors).toBe('boolean')
    } finally {
      debug.enable('')
    }
  })
})
