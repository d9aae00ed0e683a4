import { scopeKey } from '../../auth/principal.ts'
import type { FleetScope } from '../../auth/principal.ts'

/**
 * The snapshot new live clients start from, built (queried and serialised) once and
 * shared by every client that connects while it is current: 500 clients connecting at
 * once each had their own, which took seconds of the api's time and a copy each of
 * memory (issue 14).
 *
 * A snapshot is current while the hub's version has not moved and for `maxAgeMs` after
 * it was built. The version moves when a frame takes changes away: a client added after
 * that would not get them in a frame, so a snapshot read before them would miss them.
 * One added in the same version gets, after the snapshot, the next frame, with every
 * change since the version began, the snapshot's read included. The age bound is for
 * what a snapshot derives from the clock (drones stale after STALE_AFTER_S).
 */
export class SnapshotCache {
  /** The current snapshot of each fleet scope (scopeKey) asked for in this version. */
  private readonly current = new Map<
    string,
    { version: number; data: Promise<Buffer>; builtAt?: number }
  >()

  constructor(
    private readonly build: (fleets: FleetScope) => Promise<Buffer>,
    /** How long a built snapshot is served, ms. */
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The snapshot of `fleets` for a client added at `version` (read after adding it).
   * Clients that see the same fleets share one (issue 16: a reader sees its fleets only;
   * an operator's and a viewer's of one fleet are then alike, and most are).
   */
  get(version: number, fleets: FleetScope): Promise<Buffer> {
    const key = scopeKey(fleets)
    const c = this.current.get(key)
    const fresh = c?.builtAt === undefined || this.now() - c.builtAt < this.maxAgeMs
    if (c !== undefined && c.version === version && fresh) return c.data
    // What another version built is good for nobody now: the map holds this version's.
    for (const [k, e] of this.current) if (e.version !== version) this.current.delete(k)
    const entry = { version, data: this.build(fleets), builtAt: undefined as number | undefined }
    this.current.set(key, entry)
    entry.data.then(
      () => (entry.builtAt = this.now()),
      () => {
        if (this.current.get(key) === entry) this.current.delete(key) // the next client tries again
      },
    )
    return entry.data
  }
}
