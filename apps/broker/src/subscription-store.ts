import type { Client, Subscription } from 'aedes'

/** The two persistence calls aedes 1.2 makes for a persistent session's SUBSCRIBE and UNSUBSCRIBE. */
interface SubscriptionWrites {
  addSubscriptions(client: Client, subs: Subscription[]): Promise<unknown>
  removeSubscriptions(client: Client, topics: string[]): Promise<unknown>
}

/**
 * Puts a guard in front of a persistence's subscription writes. Two defects of aedes
 * 1.2.0 meet here (issue 14, item 1):
 *
 * - For a SUBSCRIBE of N filters, aedes's `storeSubscriptions` step calls
 *   `addSubscriptions(client, packet.subscriptions)` once per filter, each time with
 *   the whole array, in parallel. aedes-persistence's BroadcastPersistence (used by
 *   aedes-persistence-redis) keys the promise it waits on by client id and the array's
 *   first topic, so the second call replaces the first one's waiter: that promise never
 *   settles, aedes never sends the SUBACK, and the first filter is never subscribed
 *   live on this broker, while its messages pile up in Redis as if the client were
 *   offline. Here every call for the same array shares one write, and the writes of one
 *   client run one after another, so no two waiters of one client ever coexist.
 * - The whole array includes the filters `authorizeSubscribe` refused (SUBACK 0x80):
 *   stored, they would queue messages the client may not read while its session is
 *   offline, and hand them over when it reconnects. Only filters `mayStore` accepts are
 *   written.
 *
 * Works on any persistence with these two promise methods (aedes's in-memory one too),
 * whose two methods it replaces in place.
 */
export function guardSubscriptionWrites<P extends object>(
  persistence: P,
  mayStore: (client: Client, topic: string) => boolean,
): P {
  const store = persistence as P & SubscriptionWrites
  const addSubscriptions = store.addSubscriptions.bind(store)
  const removeSubscriptions = store.removeSubscriptions.bind(store)
  // The write started for a SUBSCRIBE packet's array, for the parallel calls that follow.
  const started = new WeakMap<Subscription[], Promise<unknown>>()
  // The last write queued per client id; removed once it settles with nothing behind it.
  const tails = new Map<string, Promise<unknown>>()

  function inTurn(clientId: string, write: () => Promise<unknown>): Promise<unknown> {
    const previous = tails.get(clientId) ?? Promise.resolve()
    const mine = previous.then(write, write)
    tails.set(clientId, mine)
    const forget = () => {
      if (tails.get(clientId) === mine) tails.delete(clientId)
    }
    mine.then(forget, forget)
    return mine
  }

  function add(client: Client, subs: Subscription[]): Promise<unknown> {
    let write = started.get(subs)
    if (write === undefined) {
      const allowed = subs.filter((sub) => mayStore(client, sub.topic))
      write =
        allowed.length === 0
          ? Promise.resolve(client)
          : inTurn(client.id, () => addSubscriptions(client, allowed))
      started.set(subs, write)
    }
    return write
  }

  function remove(client: Client, topics: string[]): Promise<unknown> {
    return inTurn(client.id, () => removeSubscriptions(client, topics))
  }

  store.addSubscriptions = add
  store.removeSubscriptions = remove
  return store
}
