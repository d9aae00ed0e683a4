import type { Duplex } from 'node:stream'
import type { Client } from 'aedes'
import type { PublishLimiter } from './rate-limit.ts'
import type { DeviceIdentity } from './tokens.ts'

/**
 * Who a token names, as one string: role, fleet and id. Sessions are namespaced by it
 * and connections counted by it; a service without a fleet has `*` there.
 */
export function identityKey(who: DeviceIdentity): string {
  const fleet = 'fleet' in who && who.fleet !== undefined ? who.fleet : '*'
  return `${who.role}:${fleet}:${who.id}`
}

/** The connections of one identity and the publish budget they share. */
interface Group {
  readonly key: string
  /** Oldest first. */
  members: Client[]
  readonly limiter: PublishLimiter | undefined
}

export interface Joined {
  /** The identity's publish budget, shared by all its connections; undefined: unlimited. */
  limiter: PublishLimiter | undefined
  /** Older connections of the identity beyond its bound, oldest first: the caller closes them. */
  displaced: Client[]
}

/**
 * The connected clients of each identity (issue 14: one drone token held 2,000
 * connections and ten of them published ten times one's rate). One owner for that
 * state: a group per identity, created by its first connection and deleted when its
 * last one closes, so that nothing outlives the connections.
 */
export class IdentityConnections {
  private readonly groups = new Map<string, Group>()
  private readonly groupOf = new WeakMap<Duplex, Group>()
  // One listener for every connection: a closure per connection would cost each
  // idle connection memory (see packet-size.ts).
  private readonly onClose: (this: Duplex) => void

  constructor(
    /** How many connections an identity may hold at once, at least 1. */
    private readonly bound: (who: DeviceIdentity) => number,
    /** The budget of a new group; undefined for an unlimited one. */
    private readonly newLimiter: (who: DeviceIdentity) => PublishLimiter | undefined,
  ) {
    const leave = (conn: Duplex) => this.leave(conn)
    this.onClose = function (this: Duplex) {
      leave(this)
    }
  }

  /** Identities with at least one connection. */
  get size(): number {
    return this.groups.size
  }

  /**
   * Counts `client` as one of `who`'s connections, until its connection closes. A
   * connection already closed is not counted (its close event may have gone by).
   */
  join(client: Client, who: DeviceIdentity): Joined {
    // Gone while its token was checked: it will publish nothing.
    if (client.conn.destroyed) return { limiter: undefined, displaced: [] }
    const key = identityKey(who)
    let group = this.groups.get(key)
    if (group === undefined) {
      group = { key, members: [], limiter: this.newLimiter(who) }
      this.groups.set(key, group)
    }
    // A member with the new client's own client id is aedes's to take over when the new
    // one registers [MQTT-3.1.4-2]: closing it here as well would race that takeover
    // (aedes then unregisters the new client in place of the old one). It is not counted.
    const others = group.members.filter((m) => m.id !== client.id)
    const displaced = others.slice(0, Math.max(0, others.length + 1 - this.bound(who)))
    if (displaced.length > 0) group.members = group.members.filter((m) => !displaced.includes(m))
    group.members.push(client)
    this.groupOf.set(client.conn, group)
    client.conn.on('close', this.onClose)
    return { limiter: group.limiter, displaced }
  }

  private leave(conn: Duplex): void {
    const group = this.groupOf.get(conn)
    if (group === undefined) return
    this.groupOf.delete(conn)
    const i = group.members.findIndex((m) => m.conn === conn)
    if (i !== -1) group.members.splice(i, 1)
    // A displaced member leaves after its identity's group may have been replaced.
    if (group.members.length === 0 && this.groups.get(group.key) === group) {
      this.groups.delete(group.key)
    }
  }
}
