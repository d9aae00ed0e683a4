import { randomUUID } from 'node:crypto'
import { kinks } from '@turf/kinks'
import type { GeofenceCreate, GeofenceGeometry, GeofencePatch } from '@skyline/schemas'
import type { Polygon, MultiPolygon } from 'geojson'
import type { FleetScope } from '../auth/principal.ts'
import { ApiError, notFound } from '../errors.ts'
import { GeofenceIndex } from './index.ts'
import type { GeofenceChanges, GeofenceRepository, GeofenceRow } from './repository.ts'

/** Told the fleet whose zones this instance changed, once the change is committed. */
export type GeofenceListener = (fleetId: string) => void

const dateOrNull = (s: string | null): Date | null => (s === null ? null : new Date(s))

/**
 * The one writer of zones (issue 18): checks what zod cannot (rings that cross, a window
 * that ends before it starts, notifications asked of a no-fly zone), writes through the
 * repository, and gives the index the fleet's zones again before answering, so that the
 * dispatcher's next round and the ingest's next batch see the change. Other instances
 * hear of it through the change feed (`onChange`) and `refresh` that fleet; every
 * reload, local or told, runs one after the other, reading after the commit it follows.
 */
export class GeofenceService {
  readonly index = new GeofenceIndex()
  private readonly listeners = new Set<GeofenceListener>()
  private loading: Promise<void> = Promise.resolve()

  constructor(
    readonly repository: GeofenceRepository,
    private readonly log: { warn(obj: object, msg: string): void },
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** A new zone in `input.fleet` (the caller checked the principal operates it). */
  async create(input: GeofenceCreate): Promise<GeofenceRow> {
    const { fleet, ...fields } = input
    const row = {
      ...fields,
      activeFrom: dateOrNull(fields.activeFrom),
      activeUntil: dateOrNull(fields.activeUntil),
    }
    check(row)
    const now = this.now()
    const created = await this.repository.insert({
      id: randomUUID(),
      fleetId: fleet,
      ...row,
      createdAt: now,
      updatedAt: now,
    })
    await this.changed(created.fleetId)
    return created
  }

  /** Changes a zone of `fleets`; one outside them is not found. */
  async update(id: string, patch: GeofencePatch, fleets: FleetScope): Promise<GeofenceRow> {
    const current = await this.repository.get(id, fleets)
    if (current === undefined) throw notFound('geofence', id)
    const changes: GeofenceChanges = {
      ...patch,
      ...(patch.activeFrom !== undefined && { activeFrom: dateOrNull(patch.activeFrom) }),
      ...(patch.activeUntil !== undefined && { activeUntil: dateOrNull(patch.activeUntil) }),
    } as GeofenceChanges
    check({ ...current, ...changes })
    const row = await this.repository.update(id, changes, this.now())
    if (row === undefined) throw notFound('geofence', id) // deleted meanwhile
    await this.changed(row.fleetId)
    return row
  }

  /** Deletes a zone of `fleets`; one outside them is not found. */
  async remove(id: string, fleets: FleetScope): Promise<void> {
    const current = await this.repository.get(id, fleets)
    if (current === undefined || !(await this.repository.remove(id))) throw notFound('geofence', id)
    await this.changed(current.fleetId)
  }

  /** Returns the way to unsubscribe. */
  onChange(listener: GeofenceListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Reads one fleet's zones into the index again (after a change, here or told). */
  refresh(fleetId: string): Promise<void> {
    return this.load(async () =>
      this.index.replaceFleet(fleetId, await this.repository.list([fleetId])),
    )
  }

  /** Reads every zone into the index again (at start; periodically on Postgres). */
  reloadAll(): Promise<void> {
    return this.load(async () => this.index.replaceAll(await this.repository.list('*')))
  }

  /** Resolves once the loads asked for so far are done. */
  idle(): Promise<void> {
    return this.loading
  }

  private load(run: () => Promise<void>): Promise<void> {
    const next = this.loading.then(run)
    this.loading = next.catch(() => {}) // the next load runs whatever became of this one
    return next
  }

  /**
   * After a committed change: the index reads the fleet again, and the listeners are
   * told. A failed read is logged, not thrown: the write stands (a 5xx would say it did
   * not), and the periodic reload makes the index good.
   */
  private async changed(fleetId: string): Promise<void> {
    await this.refresh(fleetId).catch((err: unknown) =>
      this.log.warn({ err, fleetId }, 'geofences: the index could not read the change'),
    )
    for (const listener of this.listeners) listener(fleetId)
  }
}

type Checked = Pick<
  GeofenceRow,
  'kind' | 'geometry' | 'activeFrom' | 'activeUntil' | 'notifyOnEnterLeave'
>

/** The rules over several fields, or beyond a schema: 400s with what to fix. */
function check(z: Checked): void {
  if (z.activeFrom !== null && z.activeUntil !== null && z.activeFrom >= z.activeUntil)
    throw new ApiError(400, 'bad_range', '`activeFrom` must be before `activeUntil`')
  if (z.kind === 'no_fly' && z.notifyOnEnterLeave)
    throw new ApiError(
      400,
      'bad_request',
      '`notifyOnEnterLeave` is for areas: a position inside a no-fly zone is always a breach',
    )
  checkGeometry(z.geometry)
}

/**
 * Rings that cross themselves or each other (turf's kinks; a point shared by two rings
 * counts) make "inside" ambiguous: refused, with where (OGC simple features' validity,
 * which the schema's closed rings and ranges do not cover).
 */
export function checkGeometry(geometry: GeofenceGeometry): void {
  const found = kinks(geometry as Polygon | MultiPolygon).features
  if (found.length === 0) return
  const [lon, lat] = found[0]!.geometry.coordinates
  throw new ApiError(
    400,
    'bad_geometry',
    `geometry: its rings cross themselves or each other (${found.length} crossing${found.length > 1 ? 's' : ''}, first at [${lon}, ${lat}]): draw it again without crossings`,
  )
}
