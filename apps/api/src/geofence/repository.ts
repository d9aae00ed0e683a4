import { and, asc, eq } from 'drizzle-orm'
import type { GeofenceKind } from '@skyline/schemas'
import type { FleetScope } from '../auth/principal.ts'
import type { Db } from '../db/client.ts'
import { fleetIn } from '../db/fleet-scope.ts'
import { geofences } from '../db/schema.ts'

export type GeofenceRow = typeof geofences.$inferSelect
export type GeofenceInsert = typeof geofences.$inferInsert
/** What a PATCH may change: everything but the id, the fleet and the creation time. */
export type GeofenceChanges = Partial<
  Omit<GeofenceInsert, 'id' | 'fleetId' | 'createdAt' | 'updatedAt'>
>

/**
 * The geofences table: reads scoped by the reader's fleets (`FleetScope`), and the
 * writes GeofenceService makes (it alone writes, and tells the index). Routes never
 * come here directly for a write.
 */
export class GeofenceRepository {
  constructor(private readonly db: Db) {}

  list(fleets: FleetScope, filter: { kind?: GeofenceKind } = {}): Promise<GeofenceRow[]> {
    return this.db
      .select()
      .from(geofences)
      .where(
        and(
          fleetIn(geofences.fleetId, fleets),
          filter.kind !== undefined ? eq(geofences.kind, filter.kind) : undefined,
        ),
      )
      .orderBy(asc(geofences.fleetId), asc(geofences.name), asc(geofences.id))
  }

  /** The zone with this id among `fleets`; one of another fleet is not found. */
  async get(id: string, fleets: FleetScope): Promise<GeofenceRow | undefined> {
    const [row] = await this.db
      .select()
      .from(geofences)
      .where(and(eq(geofences.id, id), fleetIn(geofences.fleetId, fleets)))
    return row
  }

  async insert(row: GeofenceInsert): Promise<GeofenceRow> {
    const [created] = await this.db.insert(geofences).values(row).returning()
    return created!
  }

  async update(id: string, changes: GeofenceChanges, at: Date): Promise<GeofenceRow | undefined> {
    const [row] = await this.db
      .update(geofences)
      .set({ ...changes, updatedAt: at })
      .where(eq(geofences.id, id))
      .returning()
    return row
  }

  async remove(id: string): Promise<boolean> {
    const gone = await this.db
      .delete(geofences)
      .where(eq(geofences.id, id))
      .returning({ id: geofences.id })
    return gone.length > 0
  }
}
