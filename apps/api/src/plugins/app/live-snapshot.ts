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
  private current: { version: number; data: Promise<Buffer>; builtAt?: number } | undefined

  constructor(
    private readonly build: () => Promise<Buffer>,
    /** How long a built snapshot is served, ms. */
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The snapshot for a client added at `version` (read after adding it). */
  get(version: number): Promise<Buffer> {
    const c = this.current
    const fresh = c?.builtAt === undefined || this.now() - c.builtAt < this.maxAgeMs
    if (c !== undefined && c.version === version && fresh) return c.data
    const entry: NonNullable<typeof this.current> = { version, data: this.build() }
    this.current = entry
    entry.data.then(
      () => (entry.builtAt = this.now()),
      () => {
        if (this.current === entry) this.current = undefined // the next client tries again
      },
    )
    return entry.data
  }
}
