import type { GeofenceView } from '@skyline/schemas'

// The page's copy of its fleets' zones (issue 18): no-fly zones and areas, read whole from
// GET /api/geofences. The live stream does not carry them; it says when a fleet's zones
// changed (a `changes` frame's `geofences`), and the page reads them again then, and on
// every snapshot (a notice may have been missed while the stream was down).

/** Whether a zone holds at `now` (epoch ms): its window's start inclusive, its end exclusive. */
export function isActive(zone: GeofenceView, now: number): boolean {
  return (
    (zone.activeFrom === null || Date.parse(zone.activeFrom) <= now) &&
    (zone.activeUntil === null || now < Date.parse(zone.activeUntil))
  )
}

/** The next moment after `now` (epoch ms) at which a zone starts or stops holding, if any. */
export function nextWindowEdge(zones: Iterable<GeofenceView>, now: number): number | undefined {
  let next: number | undefined
  for (const z of zones) {
    for (const edge of [z.activeFrom, z.activeUntil]) {
      if (edge === null) continue
      const at = Date.parse(edge)
      if (at > now && (next === undefined || at < next)) next = at
    }
  }
  return next
}

/**
 * The zones by id, with one reader of the api: `load` reads them all, and a load asked for
 * while one is on its way runs once more after it (what it read may predate the change).
 * Writers (the editor) put in what the api answered at once, so the map does not wait for
 * the notice; the next load agrees.
 */
export class ZoneStore {
  readonly zones = new Map<string, GeofenceView>()
  private readonly listeners: (() => void)[] = []
  private loading: Promise<void> | undefined
  private again = false

  constructor(
    private readonly read: () => Promise<GeofenceView[]>,
    private readonly onError: (message: string) => void,
  ) {}

  /** Calls `listener` after every change of the zones. */
  onChange(listener: () => void): void {
    this.listeners.push(listener)
  }

  /** Reads every zone again. Resolves once the zones are those read (or the read failed). */
  load(): Promise<void> {
    if (this.loading !== undefined) {
      this.again = true
      return this.loading
    }
    this.loading = (async () => {
      do {
        this.again = false
        try {
          this.replace(await this.read())
        } catch (err) {
          this.onError(`zones: ${(err as Error).message}`)
        }
      } while (this.again)
      this.loading = undefined
    })()
    return this.loading
  }

  /** A zone the api just answered with (created or changed). */
  put(zone: GeofenceView): void {
    this.zones.set(zone.id, zone)
    this.changed()
  }

  /** A zone the api just deleted. */
  remove(id: string): void {
    if (this.zones.delete(id)) this.changed()
  }

  /** The fleets zones were seen in, sorted. */
  fleets(): string[] {
    return [...new Set([...this.zones.values()].map((z) => z.fleetId))].sort()
  }

  private replace(zones: GeofenceView[]): void {
    this.zones.clear()
    for (const z of zones) this.zones.set(z.id, z)
    this.changed()
  }

  private changed(): void {
    for (const l of this.listeners) l()
  }
}
