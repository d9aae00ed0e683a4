// The api's answers the browser tests play themselves (servePage, page.routeWebSocket):
// a drone and a fleet as /api/fleet and the live stream's snapshot carry them.
import type { DroneView, FleetView } from '@skyline/schemas'

/** An online, idle drone heard just now at `position`; `o` sets what a test is about. */
export const droneView = (
  o: Pick<DroneView, 'id' | 'fleetId' | 'position'> & Partial<DroneView>,
): DroneView => ({
  online: true,
  state: 'idle',
  stationId: null,
  model: null,
  firmware: null,
  speedMps: 0,
  headingDeg: 0,
  batteryPct: 80,
  deliveryId: null,
  lastSeq: 1,
  positionAt: new Date().toISOString(),
  lastSeenAt: new Date().toISOString(),
  onlineChangedAt: null,
  offlineReason: null,
  ...o,
})

/** A fleet of `drones`, with no stations and no deliveries, as of now. */
export const fleetOf = (drones: DroneView[]): FleetView => ({
  at: new Date().toISOString(),
  drones,
  stations: [],
  deliveries: [],
})
