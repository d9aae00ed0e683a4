import type { Client } from 'aedes'
import type { PublishLimiter } from './rate-limit.ts'
import type { ClientIdentity } from './client-identity.ts'

/**
 * Who a token names, as one string: role, fleets and id. Sessions are namespaced by it
 * and connections counted by it; every fleet (a service without a fleet, an admin) is
 * `*` there, several fleets are listed sorted with commas (ids hold neither `,` nor
 * `:`), so a one-fleet identity keeps the key it had before fleets were lists.
 */
export function identityKey(who: ClientIdentity): string {
  const fleets =
    'fleet' in who ? who.fleet : 'fleets' in who && who.fleets !== '*' ? who.fleets.join(',') : '*'
  return `${who.role}:${fleets}:${who.id}`
}

/** The connections of one identity and the publish budget they share. */
class Group {
  constructor(
    /** Oldest first. Arrays of the exact length: one that grows by push reserves 17 slots. */
    public members: Client[],
    readonly limiter: PublishLimiter | undefined,
  ) {}
}

export interface Joined {
  /** The identity's publish budget, shared by all its connections; undefined: unlimited. */
  limiter: PublishLimiter | undefined
  /** Older connections of the identity beyond its bound, oldest first: the caller closes them. */
  displaced: Client[]
}

/**
 * The connected clients of each identity (issue 14: one drone token held 2,000
 * connections and ten of them published ten times one's rate). A group per identity,
 * created by its first connection and deleted with its last.
 *
 * It follows aedes's own register of connected clients (the broker calls join on its
 * `client` event and leave on `clientDisconnect`), which the connection count and cap
 * rest on too: no listener and no map entry per connection, and aedes has already
 * taken over an earlier connection with the same client id [MQTT-3.1.4-2] when a
 * client joins, so the two takeovers never race.
 */
export class IdentityConnections {
  private readonly groups = new Map<string, Group>()

  constructor(
    /** How many connections an identity may hold at once, at least 1. */
    private readonly bound: (who: ClientIdentity) => number,
    /** The budget of a new group; undefined for an unlimited one. */
    private readonly newLimiter: (who: ClientIdentity) => PublishLimiter | undefined,
  ) {}

  /** Identities with at least one connection. */
  get size(): number {
    return this.groups.size
  }

  /** Counts `client`, just registered, as one of `who`'s connections. */
  join(client: Client, who: ClientIdentity): Joined {
    const key = identityKey(who)
    const group = this.groups.get(key)
    if (group === undefined) {
      const limiter = this.newLimiter(who)
      this.groups.set(key, new Group([client], limiter))
      return { limiter, displaced: [] }
    }
    // A member closed without a clientDisconnect (aedes skips it when a client closes
    // while another with its id registers) is dropped here rather than kept for good.
    const live = group.members.filter((m) => !m.closed)
    const excess = Math.max(0, live.length + 1 - this.bound(who))
    group.members = [...live.slice(excess), client]
    return { limiter: group.limiter, displaced: live.slice(0, excess) }
  }

  /** Forgets `client`, one of `who`'s connections, once aedes has unregistered it. */
  leave(client: Client, who: ClientIdentity): void {
    const key = identityKey(who)
    const group = this.groups.get(key)
    if (group === undefined) return
    group.members = group.members.filter((m) => m !== client)
    if (group.members.length === 0) this.groups.delete(key)
  }
}
