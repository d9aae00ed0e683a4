// Imported first by the broker's entry point, before aedes loads mqtt-packet.
//
// mqtt-packet calls its `debug` loggers some ten times per packet parsed and written.
// Switched off (DEBUG unset), each call still builds a rest-arguments array and reads
// an accessor before it returns: 14% of the broker's QoS 0 throughput and 17% of its
// QoS 1 (A/B, 100 publishers -> 1 subscriber, 5 rounds each: 113,500 -> 129,600 and
// 60,500 -> 70,800 msgs/s). The `debug` package cannot be told to hand out a cheaper
// function, so its factory is wrapped: a namespace that DEBUG leaves off gets a
// function that does nothing; one that DEBUG turns on gets debug's own logger, so
// `DEBUG=mqtt-packet:* npm run broker` still prints. (Only `debug.enable()` called at
// run time could no longer reach a namespace created while off; nothing here calls it.)
import { createRequire } from 'node:module'

interface Logger {
  (...args: unknown[]): void
  enabled: boolean
  namespace: string
  extend(sub: string, delimiter?: string): Logger
}

type Factory = ((namespace: string) => Logger) & { enabled(namespace: string): boolean }

function silent(namespace: string): Logger {
  const log = Object.assign(() => {}, {
    enabled: false,
    namespace,
    extend: (sub: string, delimiter = ':') => silent(`${namespace}${delimiter}${sub}`),
    log: () => {},
    destroy: () => true,
  })
  return log
}

/** Makes `require('debug')`, as `fromPackage` resolves it, hand out silent loggers for namespaces DEBUG leaves off. */
export function quietDebugFor(fromPackage: string): void {
  const requireFrom = createRequire(createRequire(import.meta.url).resolve(fromPackage))
  const path = requireFrom.resolve('debug')
  const real = requireFrom('debug') as Factory
  if ((real as { quiet?: true }).quiet) return
  const wrapped = Object.assign(
    (namespace: string) => (real.enabled(namespace) ? real(namespace) : silent(namespace)),
    real,
    { quiet: true },
  )
  Object.assign(wrapped, { default: wrapped, debug: wrapped })
  requireFrom.cache[path]!.exports = wrapped
}

quietDebugFor('mqtt-packet')
