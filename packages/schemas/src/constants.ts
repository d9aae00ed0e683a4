// The contract's enumerations, free of zod: the web page imports them
// (`@skyline/schemas/constants`) without bundling the schemas.

/** ARCHITECTURE.md "Payloads": a drone's state. */
export const DRONE_STATES = [
  'idle',
  'charging',
  'to_pickup',
  'en_route',
  'landing',
  'returning',
  'fault',
  'offline',
] as const

/** ARCHITECTURE.md "Delivery lifecycle". */
export const DELIVERY_STATUSES = [
  'requested',
  'assigned',
  'to_pickup',
  'picked_up',
  'en_route',
  'arrived',
  'completed',
  'failed',
  'cancelled',
] as const
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number]

/** A delivery in one of these is finished: no drone works on it any more. */
export const FINISHED_STATUSES: readonly DeliveryStatus[] = ['completed', 'failed', 'cancelled']

/** docs/architecture.md "No-fly zones and areas": what a geofence is. */
export const GEOFENCE_KINDS = ['no_fly', 'area'] as const
export type GeofenceKind = (typeof GEOFENCE_KINDS)[number]

/** Vertices of one geofence at most, over all its rings (each ring's closing one counted). */
export const MAX_GEOFENCE_VERTICES = 1_000

/** docs/architecture.md "Alerts": what an alert is about. */
export const ALERT_KINDS = [
  'battery_low',
  'drone_lost',
  'geofence_breach',
  'delivery_late',
  'station_offline',
  'route_blocked',
] as const
export type AlertKind = (typeof ALERT_KINDS)[number]

/** How urgent an alert is. */
export const ALERT_SEVERITIES = ['info', 'warning', 'critical'] as const
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number]

/** An alert is open, then maybe acknowledged by an operator, then resolved when its condition clears. */
export const ALERT_STATES = ['open', 'acknowledged', 'resolved'] as const
export type AlertState = (typeof ALERT_STATES)[number]
