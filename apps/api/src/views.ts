import type {
  DeliveryView,
  DroneView,
  GeofenceView,
  StationView,
  TrackPointView,
} from '@skyline/schemas'
import type { DeliveryRow } from './delivery/lifecycle.ts'
import type { GeofenceRow } from './geofence/repository.ts'
import type { DroneRow, StationRow, TrackPoint } from './plugins/app/fleet-repository.ts'

// Rows into what REST and the live stream return (the view schemas live in
// @skyline/schemas: the web map reads them too).

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

export function stationView(row: StationRow): StationView {
  return {
    ...row,
    statusAt: row.statusAt.toISOString(),
    onlineChangedAt: isoOrNull(row.onlineChangedAt),
  }
}

export function trackPointView(p: TrackPoint): TrackPointView {
  return { ...p, ts: p.ts.toISOString() }
}

export const deliveryView = (d: DeliveryRow): DeliveryView => ({
  id: d.id,
  fleetId: d.fleetId,
  status: d.status,
  source: d.source,
  pickupStationId: d.pickupStationId,
  dropoffStationId: d.dropoffStationId,
  payloadKg: d.payloadKg,
  droneId: d.droneId,
  distanceM: d.distanceM,
  requestedAt: d.requestedAt.toISOString(),
  assignedAt: isoOrNull(d.assignedAt),
  pickedUpAt: isoOrNull(d.pickedUpAt),
  departedAt: isoOrNull(d.departedAt),
  arrivedAt: isoOrNull(d.arrivedAt),
  completedAt: isoOrNull(d.completedAt),
  failedAt: isoOrNull(d.failedAt),
  cancelledAt: isoOrNull(d.cancelledAt),
  failureReason: d.failureReason,
  routeBlockedSince: isoOrNull(d.routeBlockedSince),
  etaAt: isoOrNull(d.etaAt),
  etaErrorS: d.etaErrorS,
  promisedAt: isoOrNull(d.promisedAt),
})

export const geofenceView = (g: GeofenceRow): GeofenceView => ({
  id: g.id,
  fleetId: g.fleetId,
  name: g.name,
  kind: g.kind,
  geometry: g.geometry,
  activeFrom: isoOrNull(g.activeFrom),
  activeUntil: isoOrNull(g.activeUntil),
  notifyOnEnterLeave: g.notifyOnEnterLeave,
  createdAt: g.createdAt.toISOString(),
  updatedAt: g.updatedAt.toISOString(),
})
