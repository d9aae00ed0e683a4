import type { Aedes, Client } from 'aedes'

/** What drain() needs of aedes beyond its typings: its clients by id and its persistence. */
interface AedesInternals {
  readonly id: string
  readonly clients: Record<string, Client>
  readonly persistence: { delWill(who: { id: string; brokerId: string }): Promise<unknown> }
}

/** aedes's Client at run time: the will it publishes when the connection ends uncleanly. */
type ClientWithWill = Client & { will: unknown; _will: unknown }

export interface DrainOptions {
  /** Time over which the clients are closed, evenly spread, the last at its end, ms. 0: all at once. */
  windowMs: number
  /** Told about each client it closed (metrics, logs). */
  onClosed?: (client: Client) => void
  /** Told when a client's stored will could not be deleted (Redis down): it may still fire. */
  onError?: (err: Error, client: Client) => void
}

/**
 * Closes every client of `aedes` gradually, without its last will (issue 17, item 4):
 * the clients of a broker that drains reconnect to another broker of the cluster, so a
 * drone that moved is not offline, and its status must not say so. Client i of n is
 * closed at (i + 1) / n of the window: the first one a moment after the load balancer
 * was told (its health check fails before anyone is closed), and the other broker
 * takes the reconnections a few at a time rather than all at once.
 *
 * A persistent session (clean 0) stays in the persistence, its QoS 1/2 messages queued
 * there until the client is back, on whichever broker. Clients registered while the
 * drain runs (a CONNECT that was being authenticated when the listeners closed) are
 * closed at its end.
 */
export async function drainClients(aedes: Aedes, options: DrainOptions): Promise<number> {
  const broker = aedes as Aedes & AedesInternals
  const started = Date.now()
  const clients = Object.values(broker.clients)
  let closed = 0
  const closeOne = async (client: Client) => {
    if (client.closed) return
    await closeWithoutWill(broker, client, options.onError)
    closed++
    options.onClosed?.(client)
  }
  for (let i = 0; i < clients.length;) {
    const due = Math.min(
      clients.length,
      options.windowMs <= 0
        ? clients.length
        : Math.floor(((Date.now() - started) * clients.length) / options.windowMs),
    )
    if (due > i) {
      await Promise.all(clients.slice(i, due).map(closeOne))
      i = due
      continue
    }
    // The next one is due at (i + 1) / n of the window.
    const nextAt = started + ((i + 1) * options.windowMs) / clients.length
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, nextAt - Date.now())))
  }
  await Promise.all(Object.values(broker.clients).map(closeOne))
  return closed
}

/**
 * Closes one client as if it had sent DISCONNECT, as far as its will goes: aedes
 * publishes `client.will` when the connection ends without one [MQTT-3.1.2-8], and
 * keeps a copy in the persistence (under this broker's id) that another broker of the
 * cluster publishes once this one's heartbeat has stopped. Both go before the close.
 */
async function closeWithoutWill(
  broker: Aedes & AedesInternals,
  client: Client,
  onError: DrainOptions['onError'],
): Promise<void> {
  const c = client as ClientWithWill
  if (c.will != null || c._will != null) {
    c.will = null
    c._will = null
    try {
      await broker.persistence.delWill({ id: client.id, brokerId: broker.id })
    } catch (err) {
      onError?.(err as Error, client)
    }
  }
  await new Promise<void>((resolve) => client.close(resolve))
}
