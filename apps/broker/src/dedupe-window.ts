import type { Client } from 'aedes'

type Deliver = (packet: { brokerId?: string; brokerCounter?: number }, done: () => void) => void
type Delivering = Client & {
  deliver0: Deliver
  deliverQoS: Deliver
  duplicates: Record<string, number>
}

/** How many of its latest deliveries a client remembers to drop a second copy of one. */
export const DEDUPE_WINDOW = 256

/** aedes's high-water mark, made to let everything through: `(duplicates[id] || 0) < counter`. */
const noHighWaterMark: Record<string, number> = new Proxy(
  {},
  {
    get: () => undefined,
    set: () => true,
  },
)

/**
 * A message reaches a client once, even when several of its subscriptions match it,
 * and every message does reach it, in whatever order the cluster routes them.
 *
 * aedes drops a message whose counter (per publishing broker) is not above the highest
 * it delivered to the client, which assumes messages are routed in counter order. They
 * are not: a QoS 1 message is routed only once the persistence has queued it for every
 * persistent session it matches, one Redis write per session, so a message that two
 * sessions match is routed after a later one that only one matches. aedes then dropped
 * the earlier message for good (moscajs/aedes#955, open; the fix proposed upstream in
 * moscajs/aedes#972 is this one): with an observer's session on the fleet's telemetry
 * beside the api's on everything, the api lost half of a burst, and every fault of the
 * cluster run (`npm run chaos -- cluster`) lost some.
 *
 * Here a client remembers the broker id and counter of its last DEDUPE_WINDOW
 * deliveries instead: the copies one message makes for overlapping subscriptions are
 * routed together, so a short window finds them. aedes takes `deliver0` and
 * `deliverQoS` when a subscription is made, so they are wrapped before any can be.
 */
export function dedupeWindow(client: Client): void {
  const c = client as Delivering
  c.duplicates = noHighWaterMark
  // In the order delivered (a Set iterates in insertion order); made on the first delivery.
  let recent: Set<string> | undefined
  const firstTime = (packet: { brokerId?: string; brokerCounter?: number }): boolean => {
    if (packet.brokerId === undefined || packet.brokerCounter === undefined) return true
    const key = `${packet.brokerId}:${packet.brokerCounter}`
    recent ??= new Set()
    if (recent.has(key)) return false
    recent.add(key)
    if (recent.size > DEDUPE_WINDOW) recent.delete(recent.values().next().value as string)
    return true
  }
  const deliver0 = c.deliver0
  const deliverQoS = c.deliverQoS
  // aedes's deliverQoS hands a QoS 0 message on to the client's deliver0 (this one):
  // that is the same delivery, not a second copy.
  let handingOn = false
  c.deliverQoS = (packet, done) => {
    if (!firstTime(packet)) return void setImmediate(done)
    handingOn = true
    try {
      deliverQoS(packet, done)
    } finally {
      handingOn = false
    }
  }
  c.deliver0 = (packet, done) => {
    if (!handingOn && !firstTime(packet)) return void setImmediate(done)
    deliver0(packet, done)
  }
}
