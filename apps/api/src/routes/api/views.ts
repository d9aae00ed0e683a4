import { z } from 'zod'
import { DRONE_STATES } from '@skyline/schemas'
import type { DroneRow, StationRow, TrackPoint } from '../../plugins/app/fleet-repository.ts'

// What REST returns, as zod schemas (they also feed OpenAPI) and the functions that
// turn rows into them. Times are ISO 8601 strings; units are in the field names.

const iso = z.iso.datetime()

export const ErrorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) })

export const DroneViewSchema = z.object({
  id: z.string(),
  fleetId: z.string(),
  online: z.boolean(),
  /** A DroneState, or `stale` when an online drone has been silent longer than STALE_AFTER_S. */
  state: z.enum([...DRONE_STATES, 'stale']),
  stationId: z.string().nullable(),
  model: z.string().nullable(),
  firmware: z.string().nullable(),
  position: z.object({ lat: z.number(), lon: z.number(), altM: z.number() }).nullable(),
  speedMps: z.number().nullable(),
  headingDeg: z.number().nullable(),
  batteryPct: z.number().nullable(),
  deliveryId: z.string().nullable(),
  lastSeq: z.number().int().nullable(),
  positionAt: iso.nullable(),
  lastSeenAt: iso.nullable(),
  onlineChangedAt: iso.nullable(),
  offlineReason: z.string().nullable(),
})
export type DroneView = z.infer<typeof DroneViewSchema>

export const StationViewSchema = z.object({
  id: z.string(),
  fleetId: z.string(),
  name: z.string(),
  lat: z.number(),
  lon: z.number(),
  capacity: z.number().int(),
  docked: z.array(z.string()),
  online: z.boolean(),
  statusAt: iso,
  onlineChangedAt: iso.nullable(),
})

export const TrackPointSchema = z.object({
  ts: iso,
  seq: z.number().int(),
  lat: z.number(),
  lon: z.number(),
  altM: z.number(),
  speedMps: z.number(),
  headingDeg: z.number(),
  batteryPct: z.number(),
  state: z.string(),
  deliveryId: z.string().nullable(),
})

const isoOrNull = (d: Date | null) => d?.toISOString() ?? null

export function droneView(row: DroneRow, now: Date, staleAfterS: number): DroneView {
  const silent =
    row.lastSeenAt === null || now.getTime() - row.lastSeenAt.getTime() > staleAfterS * 1000
  return {
    id: row.id,
    fleetId: row.fleetId,
    online: row.online,
    state: row.online && silent ? 'stale' : (row.state as DroneView['state']),
    stationId: row.stationId,
    model: row.model,
    firmware: row.firmware,
    position:
      row.lat !== null && row.lon !== null
        ? { lat: row.lat, lon: row.lon, altM: row.altM ?? 0 }
        : null,
    speedMps: row.speedMps,
    headingDeg: row.headingDeg,
    batteryPct: row.batteryPct,
    deliveryId: row.deliveryId,
    lastSeq: row.lastSeq,
    positionAt: isoOrNull(row.positionAt),
    lastSeenAt: isoOrNull(row.lastSeenAt),
    onlineChangedAt: isoOrNull(row.onlineChangedAt),
    offlineReason: row.offlineReason,
  }
}

export function stationView(row: StationRow): z.infer<typeof StationViewSchema> {
  return {
    ...row,
    statusAt: row.statusAt.toISOString(),
    onlineChangedAt: isoOrNull(row.onlineChangedAt),
  }
}

export function trackPointView(p: TrackPoint): z.infer<typeof TrackPointSchema> {
  return { ...p, ts: p.ts.toISOString() }
}
