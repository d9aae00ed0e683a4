// mqtt-packet calls its `debug` loggers some ten times per packet parsed and written.
// Switched off (DEBUG unset), each call still builds a rest-arguments array and reads
// an accessor before it returns: 14% of the broker's QoS 0 throughput and 17% of its
// QoS 1 (A/B, 100 publishers -> 1 subscriber, 5 rounds each: 113,500 -> 129,600 and
// 60,500 -> 70,800 msgs/s). The `debug` package cannot be told to hand out a cheaper
// function, so its factory is wrapped: a namespace that DEBUG leaves off gets a
// function that does nothing; one that DEBUG turns on gets debug's own logger, so
// `DEBUG=mqtt-packet:* npm run broker` still prints. The one `debug` in the broker's
// dependencies also serves ioredis, whose loggers are made silent alike. (Only
// `debug.enable()` called at run time could no longer reach a logger made while its
// namespace was off; nothing in the broker calls it.)
import { createRequire } from 'node:module'

export interface DebugLogger {
  (...args: unknown[]): void
  enabled: boolean
  namespace: string
  extend(sub: string, delimiter?: string): DebugLogger
}

export type DebugFactory = ((namespace: string) => DebugLogger) & {
  enabled(namespace: string): boolean
}

/** `real` (the `debug` package's export) handing out silent loggers for the namespaces it has off. */
export function quietDebug(real: DebugFactory): DebugFactory {
  const silent = (namespace: string): DebugLogger =>
    Object.assign(() => {}, {
      enabled: false,
      namespace,
      extend: (sub: string, delimiter = ':') => quiet(`${namespace}${delimiter}${sub}`),
      log: () => {},
      destroy: () => true,
    })
  const quiet: DebugFactory = new Proxy(real, {
    apply: (target, _this, [namespace]: [string]) =>
      target.enabled(namespace) ? target(namespace) : silent(namespace),
    // `debug.default` and `debug.debug` are the factory itself (ioredis calls `.default`).
    get: (target, key): unknown =>
      key === 'default' || key === 'debug' ? quiet : Reflect.get(target, key),
  })
  return quiet
}

/**
 * Puts `quietDebug` in place of the `debug` that mqtt-packet (as aedes resolves it)
 * requires. Throws if mqtt-packet has been loaded already: its loggers are made when
 * it loads, so it would keep debug's own.
 */
export function installQuietDebug(): void {
  const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes'))
  const fromMqttPacket = createRequire(fromAedes.resolve('mqtt-packet'))
  if (fromMqttPacket.cache[fromMqttPacket.resolve('./parser.js')] !== undefined) {
    throw new Error('installQuietDebug: mqtt-packet is loaded already; call it before aedes loads')
  }
  const path = fromMqttPacket.resolve('debug')
  const real = fromMqttPacket('debug') as DebugFactory
  fromMqttPacket.cache[path]!.exports = quietDebug(real)
}
