import { Readable } from 'node:stream'
import aedesPersistence from 'aedes-persistence'
import { indexedOutgoing } from './outgoing-index.ts'

interface RetainedPacket {
  topic: string
  payload: Buffer
}

interface RetainedStore {
  storeRetained(packet: RetainedPacket): Promise<void>
  createRetainedStreamCombi(patterns: string[]): Readable
}

const isWildcard = (pattern: string) => pattern.includes('+') || pattern.includes('#')

/**
 * aedes's in-memory persistence with an index of retained messages by topic, and
 * indexed outgoing queues (outgoing-index.ts).
 *
 * Why: on every SUBSCRIBE, aedes-persistence tests every retained message against the
 * filter. Every drone subscribes to its own commands topic and keeps a retained status,
 * so connecting N drones costs O(N²): 10,000 drones took a minute to connect with the
 * broker CPU-bound in qlobber. A filter without wildcards matches at most the one topic
 * it names, so it is answered from the index; wildcard filters still go to the store
 * (aedes-persistence-redis already does the same lookup in Redis).
 */
export function indexedMemoryPersistence(): unknown {
  // A CommonJS module whose types declare an ES default export: at run time the import
  // is the factory itself.
  const memoryPersistence = aedesPersistence as unknown as () => RetainedStore & object
  const inner = memoryPersistence()
  const retained = new Map<string, RetainedPacket>()
  // The outgoing queues are ours too, indexed (see outgoing-index.ts).
  const outgoing: Record<string, unknown> = indexedOutgoing()
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (typeof prop === 'string' && prop in outgoing) return outgoing[prop]
      if (prop === 'storeRetained') {
        return (packet: RetainedPacket) => {
          // Same rule and same copy as the store: an empty payload deletes [MQTT-3.3.1-10].
          if (packet.payload.length === 0) retained.delete(packet.topic)
          else retained.set(packet.topic, { ...packet })
          return target.storeRetained(packet)
        }
      }
      if (prop === 'createRetainedStreamCombi') {
        return (patterns: string[]) => {
          const exact = patterns.filter((p) => !isWildcard(p))
          const wildcards = patterns.filter(isWildcard)
          const found = exact.flatMap((p) => retained.get(p) ?? [])
          if (wildcards.length === 0) return Readable.from(found)
          const seen = new Set(found.map((p) => p.topic))
          return Readable.from(
            (async function* () {
              yield* found
              for await (const p of target.createRetainedStreamCombi(
                wildcards,
              ) as AsyncIterable<RetainedPacket>) {
                if (!seen.has(p.topic)) yield p
              }
            })(),
          )
        }
      }
      const value: unknown = Reflect.get(target, prop, receiver)
      return typeof value === 'function'
        ? (value as (...a: unknown[]) => unknown).bind(target)
        : value
    },
  })
}
