import type { Wind } from './flight.ts'
import type { LatLon } from './geo.ts'
import type { Stop } from './drone-model.ts'

/** Counters the status line and the summary show. */
export interface FleetStats {
  published: number
  telemetry: number
  events: number
  /** QoS 1 telemetry the broker acknowledged (PUBACK): what it took responsibility for. */
  telemetryAcked: number
  /** Events (always QoS 1) the broker acknowledged. */
  eventsAcked: number
  reconnects: number
  chaosDrops: number
  deliveriesCompleted: number
  deliveriesFailed: number
  requests: number
  commandsRejected: number
}

export function emptyStats(): FleetStats {
  return {
    published: 0,
    telemetry: 0,
    events: 0,
    telemetryAcked: 0,
    eventsAcked: 0,
    reconnects: 0,
    chaosDrops: 0,
    deliveriesCompleted: 0,
    deliveriesFailed: 0,
    requests: 0,
    commandsRejected: 0,
  }
}

/** What every drone and station of one simulated fleet shares. */
export interface SimContext {
  readonly fleetId: string
  /** Simulated time, epoch ms: starts at the wall clock and runs `timeScale` times faster. */
  now(): number
  readonly wind: Wind
  readonly telemetryQos: 0 | 1
  readonly stats: FleetStats
  nearestStation(pos: LatLon): Stop
  stationById(id: string): Stop | undefined
}
