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

/**
 * The deliveries a committed batch may have changed: those its drones' events name,
 * those its requests create, and those its positions move the ETA of.
 */
export function deliveriesIn(items: IngestItem[]): Set<string> {
  const ids = new Set<string>()
  for (const item of items) {
    if (item.kind === 'delivery-request') ids.add(item.msg.id)
    else if (
      (item.kind === 'telemetry' || item.kind === 'drone-event') &&
      item.msg.deliveryId !== undefined
    )
      ids.add(item.msg.deliveryId)
  }
  return ids
}
