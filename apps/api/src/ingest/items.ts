import type {
  DeliveryRequest,
  DroneEvent,
  DroneStatus,
  StationStatus,
  Telemetry,
} from '@skyline/schemas'

/** One decoded (or rejected) MQTT message on its way to the database. */
export type IngestItem =
  | { kind: 'telemetry'; fleetId: string; droneId: string; msg: Telemetry; receivedAt: Date }
  | { kind: 'drone-status'; fleetId: string; droneId: string; msg: DroneStatus; receivedAt: Date }
  | { kind: 'drone-event'; fleetId: string; droneId: string; msg: DroneEvent; receivedAt: Date }
  | {
      kind: 'station-status'
      fleetId: string
      stationId: string
      msg: StationStatus
      receivedAt: Date
    }
  | {
      kind: 'delivery-request'
      fleetId: string
      stationId: string
      msg: DeliveryRequest
      receivedAt: Date
    }
  | {
      kind: 'rejected'
      topic: string
      sizeBytes: number
      excerpt: string
      reason: string
      /** SHA-256 of topic and payload: a redelivery is stored once (dead-letter.ts). */
      digest: string
      receivedAt: Date
    }
