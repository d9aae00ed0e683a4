import { z } from 'zod'
import type { Alert } from './alerts.ts'
import { DELIVERY_STATUSES, DRONE_STATES, GEOFENCE_KINDS } from './constants.ts'
import { GeofenceGeometrySchema } from './geofences.ts'

// What the api's REST and live stream return: the contract between the api and the
// web map (ARCHITECTURE.md "REST"). Times are ISO 8601 strings; units are in the
// field names. The api builds these from its rows; the map reads them.

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
export type DroneViewState = DroneView['state']

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
export type StationView = z.infer<typeof StationViewSchema>

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
export type TrackPointView = z.infer<typeof TrackPointSchema>

export const DeliveryViewSchema = z.object({
  id: z.string(),
  fleetId: z.string(),
  status: z.enum(DELIVERY_STATUSES),
  source: z.enum(['station', 'api']),
  pickupStationId: z.string(),
  dropoffStationId: z.string(),
  payloadKg: z.number(),
  droneId: z.string().nullable(),
  distanceM: z.number().nullable(),
  requestedAt: iso,
  assignedAt: iso.nullable(),
  pickedUpAt: iso.nullable(),
  departedAt: iso.nullable(),
  arrivedAt: iso.nullable(),
  completedAt: iso.nullable(),
  failedAt: iso.nullable(),
  cancelledAt: iso.nullable(),
  failureReason: z.string().nullable(),
  /**
   * While it waits (`requested`): since when its route crosses an active no-fly zone;
   * null when it does not. The api always sends it (optional for clients' older fixtures).
   */
  routeBlockedSince: iso.nullable().optional(),
  etaAt: iso.nullable(),
  etaErrorS: z.number().nullable(),
  /**
   * The ETA promised at assignment, on the drone's clock as `etaAt`; null before (and once
   * given back to the queue). The api always sends it (optional for clients' older fixtures).
   */
  promisedAt: iso.nullable().optional(),
})
export type DeliveryView = z.infer<typeof DeliveryViewSchema>

export const DeliveryDetailSchema = DeliveryViewSchema.extend({
  events: z.array(
    z.object({ status: z.enum(DELIVERY_STATUSES), at: iso, detail: z.string().nullable() }),
  ),
  track: z.array(
    z.object({ ts: iso, lat: z.number(), lon: z.number(), altM: z.number(), speedMps: z.number() }),
  ),
})
export type DeliveryDetail = z.infer<typeof DeliveryDetailSchema>

export const FleetViewSchema = z.object({
  at: iso,
  drones: z.array(DroneViewSchema),
  stations: z.array(StationViewSchema),
  /** Deliveries not finished yet, with their ETAs. */
  deliveries: z.array(DeliveryViewSchema),
})
export type FleetView = z.infer<typeof FleetViewSchema>

/** A no-fly zone or an area (`GET /api/geofences`); its window's ends are null when open. */
export const GeofenceViewSchema = z.object({
  id: z.string(),
  fleetId: z.string(),
  name: z.string(),
  kind: z.enum(GEOFENCE_KINDS),
  geometry: GeofenceGeometrySchema,
  activeFrom: iso.nullable(),
  activeUntil: iso.nullable(),
  notifyOnEnterLeave: z.boolean(),
  createdAt: iso,
  updatedAt: iso,
})
export type GeofenceView = z.infer<typeof GeofenceViewSchema>

/**
 * `GET /api/auth/config`: how the map signs in. `oidc` is the identity server it sends
 * people to (authorization code with PKCE, as the public client `clientId`, asking for
 * `scope` and for access tokens for `audience`, RFC 8707's `resource`); `null` when the
 * api takes pasted tokens only. Nothing secret: the page needs it before signing in.
 */
export const AuthConfigSchema = z.object({
  oidc: z
    .object({
      issuer: z.string(),
      clientId: z.string(),
      audience: z.string(),
      scope: z.string(),
    })
    .nullable(),
})
export type AuthConfig = z.infer<typeof AuthConfigSchema>

/**
 * `GET /api/auth/me`: who the page's token names, so that the map offers what the api
 * would take from it (issue 18: drawing zones for a `service` or `admin` token) and
 * names its fleets. The api judges every request anyway: this only spares a person
 * controls that would answer 403.
 */
export const WhoAmISchema = z.object({
  sub: z.string(),
  /** `viewer`, `service` or `admin` (packages/auth's roles that read). */
  role: z.string(),
  /** The fleets it reads (and, when `operates`, writes): `*` for every fleet. */
  fleets: z.union([z.literal('*'), z.array(z.string())]),
  /** Whether it may dispatch, cancel, and create, change and delete zones. */
  operates: z.boolean(),
})
export type WhoAmI = z.infer<typeof WhoAmISchema>

/** A drone's change in a live frame: only what changed, keyed by fleetId and id. */
export type DroneChange = Pick<DroneView, 'id' | 'fleetId'> & Partial<DroneView>

/**
 * `/api/live` frames. The first is a snapshot (a FleetView, and the alerts not resolved);
 * then at most one `changes` frame every 250 ms, with the alerts opened, acknowledged or
 * resolved since. An `error` answers a message the server cannot read.
 */
export type LiveFrame =
  | ({ type: 'snapshot'; alerts: Alert[] } & FleetView)
  | {
      type: 'changes'
      at: string
      drones: DroneChange[]
      stations: StationView[]
      deliveries: DeliveryView[]
      alerts: Alert[]
      /**
       * Present when zones changed: the fleets whose zones were created, changed or
       * deleted since the last frame (GET /api/geofences has them).
       */
      geofences?: string[]
    }
  | { type: 'error'; message: string }
