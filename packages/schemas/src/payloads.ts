import { z } from 'zod'
import { DRONE_STATES } from './constants.ts'
import { IdSchema } from './ids.ts'

// Every payload carries `v` so that a later version can be told apart on the wire. zod's
// `z.number()` already refuses NaN and ±Infinity; `z.object` strips unknown keys, which is
// how "unknown extra fields are ignored" (ARCHITECTURE.md) is kept.
export const SCHEMA_VERSION = 1

const VersionSchema = z.literal(SCHEMA_VERSION)
/** Epoch milliseconds. */
/**
 * Epoch milliseconds, up to the end of year 9999: the range of a date that JavaScript
 * and Postgres both represent (a larger ts cannot be stored, and would stall a batch).
 */
export const MAX_TS = 253_402_300_799_999
const TimestampSchema = z.int().nonnegative().max(MAX_TS)
/**
 * Free text of `min` to `max` characters. U+0000 is refused here: Postgres text and jsonb
 * cannot hold it (SQLSTATE 22021 / 22P05), so such a message could never be stored, and a
 * reason at decode time says why better than a refused write does.
 */
const TextSchema = (max: number, min = 0) =>
  z
    .string()
    .min(min)
    .max(max)
    .refine((s) => !s.includes('\u0000'), 'must not contain U+0000 (NUL)')
/** Degrees, WGS84. */
const LatSchema = z.number().min(-90).max(90)
/** Degrees, WGS84. */
const LonSchema = z.number().min(-180).max(180)

export const DroneStateSchema = z.enum(DRONE_STATES)
export type DroneState = z.infer<typeof DroneStateSchema>

export const TelemetrySchema = z.object({
  v: VersionSchema,
  ts: TimestampSchema,
  /** Per-drone counter, +1 per message; gaps measure loss. */
  seq: z.int().nonnegative(),
  lat: LatSchema,
  lon: LonSchema,
  /** Metres above mean sea level; the range spans the Dead Sea shore to far above any drone. */
  altM: z.number().min(-500).max(20_000),
  /** Ground speed, metres per second. */
  speedMps: z.number().min(0).max(150),
  /** Degrees clockwise from true north, [0, 360). */
  headingDeg: z.number().min(0).lt(360),
  /** Percent, [0, 100]. */
  batteryPct: z.number().min(0).max(100),
  state: DroneStateSchema,
  deliveryId: IdSchema.optional(),
})
export type Telemetry = z.infer<typeof TelemetrySchema>

export const DroneStatusSchema = z.object({
  v: VersionSchema,
  ts: TimestampSchema,
  online: z.boolean(),
  state: DroneStateSchema,
  stationId: IdSchema.optional(),
  model: TextSchema(64).optional(),
  firmware: TextSchema(64).optional(),
  /** Why the drone went offline; set by the last will. */
  reason: TextSchema(200).optional(),
})
export type DroneStatus = z.infer<typeof DroneStatusSchema>

export const DRONE_WILL_REASON = 'connection_lost'
export const STATION_WILL_REASON = 'connection_lost'

/**
 * The drone's last will: registered at connect time, published (retained, QoS 1) by the
 * broker when the connection drops without a DISCONNECT. `ts` is therefore the connect
 * time, not the moment of loss.
 */
export function droneWillPayload(ts: number): DroneStatus {
  return { v: SCHEMA_VERSION, ts, online: false, state: 'offline', reason: DRONE_WILL_REASON }
}

export const DRONE_EVENT_TYPES = [
  'delivery.accepted',
  'delivery.picked_up',
  'delivery.departed',
  'delivery.arrived',
  'delivery.completed',
  'delivery.failed',
  'battery.low',
] as const
export type DroneEventType = (typeof DRONE_EVENT_TYPES)[number]

export const DroneEventSchema = z.object({
  v: VersionSchema,
  ts: TimestampSchema,
  /** Unique per event, so that a QoS 1 redelivery can be de-duplicated. */
  id: IdSchema,
  type: z.enum(DRONE_EVENT_TYPES),
  deliveryId: IdSchema.optional(),
  stationId: IdSchema.optional(),
  detail: TextSchema(1000).optional(),
})
export type DroneEvent = z.infer<typeof DroneEventSchema>

const StationPointSchema = z.object({ stationId: IdSchema, lat: LatSchema, lon: LonSchema })

export const DRONE_COMMAND_TYPES = ['delivery.assign', 'return_to_base', 'cancel'] as const
export type DroneCommandType = (typeof DRONE_COMMAND_TYPES)[number]

export const DroneCommandSchema = z.discriminatedUnion('type', [
  z.object({
    v: VersionSchema,
    ts: TimestampSchema,
    id: IdSchema,
    type: z.literal('delivery.assign'),
    deliveryId: IdSchema,
    pickup: StationPointSchema,
    dropoff: StationPointSchema,
  }),
  z.object({
    v: VersionSchema,
    ts: TimestampSchema,
    id: IdSchema,
    type: z.literal('return_to_base'),
    /** Absent: the drone picks its nearest station. */
    stationId: IdSchema.optional(),
  }),
  z.object({
    v: VersionSchema,
    ts: TimestampSchema,
    id: IdSchema,
    type: z.literal('cancel'),
    /** Absent: cancel whatever the drone is doing. */
    deliveryId: IdSchema.optional(),
  }),
])
export type DroneCommand = z.infer<typeof DroneCommandSchema>

export const StationStatusSchema = z.object({
  v: VersionSchema,
  ts: TimestampSchema,
  online: z.boolean(),
  name: TextSchema(100, 1),
  lat: LatSchema,
  lon: LonSchema,
  /** Landing pads, i.e. how many drones can dock at once. */
  capacity: z.int().min(0).max(1000),
  /** Ids of the drones docked now; capped like `capacity`. */
  docked: z.array(IdSchema).max(1000),
  reason: TextSchema(200).optional(),
})
export type StationStatus = z.infer<typeof StationStatusSchema>

/**
 * The station's last will (see `droneWillPayload`). It repeats the station's description so
 * that the retained status still places the station on the map while it is offline.
 */
export function stationWillPayload(
  base: Omit<StationStatus, 'online' | 'reason' | 'ts' | 'v'>,
  ts: number,
): StationStatus {
  // Fields are picked, not spread, so a caller's extra properties stay off the wire.
  const { name, lat, lon, capacity, docked } = base
  return {
    v: SCHEMA_VERSION,
    ts,
    online: false,
    name,
    lat,
    lon,
    capacity,
    docked,
    reason: STATION_WILL_REASON,
  }
}

export const DeliveryRequestSchema = z.object({
  v: VersionSchema,
  ts: TimestampSchema,
  id: IdSchema,
  dropoffStationId: IdSchema,
  /** Kilograms, (0, 50]. */
  payloadKg: z.number().positive().max(50),
})
export type DeliveryRequest = z.infer<typeof DeliveryRequestSchema>
