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
