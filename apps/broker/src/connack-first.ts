import type { Client } from 'aedes'

type Deliver = (packet: { qos?: number }, done: () => void) => void
type Delivering = Client & { deliver0: Deliver; deliverQoS: Deliver; connackSent: boolean }

/**
 * [MQTT-3.2.0-1] The first packet the server sends is the CONNACK. aedes restores a
 * persistent session's subscriptions before it writes the CONNACK, and delivered
 * whatever the cluster published in between ahead of it. mqtt.js then holds the PUBACK
 * of such a message until it is connected, reads nothing behind it, the CONNACK
 * included, and gives up with 'connack timeout': a persistent session reconnecting
 * while messages stream in (every drone of a draining broker, issue 17 item 4) flapped
 * between brokers for as long as they did.
 *
 * Before the CONNACK, a persistent session's deliveries are skipped: a QoS 1/2 message
 * for it is in its queue in the persistence before it is routed (aedes's enqueueOffline
 * runs before emitPacket), and the queue is sent right after the CONNACK; QoS 0 may be
 * lost. aedes takes `deliver0` and `deliverQoS` when a subscription is made, so they are
 * wrapped before any can be.
 */
export function connackFirst(client: Client): void {
  const c = client as Delivering
  for (const name of ['deliver0', 'deliverQoS'] as const) {
    const deliver = c[name]
    c[name] = (packet, done) => {
      if (!c.connackSent && !c.clean) {
        setImmediate(done)
        return
      }
      deliver(packet, done)
    }
  }
}
