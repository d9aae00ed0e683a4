import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  real,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core'
import { sql } from 'drizzle-orm'
import {
  ALERT_KINDS,
  ALERT_SEVERITIES,
  ALERT_STATES,
  DELIVERY_STATUSES,
  GEOFENCE_KINDS,
  type DeliveryStatus,
  type GeofenceGeometry,
} from '@skyline/schemas'
import { ETA_HORIZONS } from '../delivery/eta-horizons.ts'

// Tables in camelCase, columns in snake_case (STYLE.md). Times are timestamptz; the
// payloads' epoch-ms `ts` become Dates at the edge. Ids are unique within a fleet, so
// devices are keyed by (fleet, id).

const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' })

/** Latest known state of every drone: what REST and the map's first paint read. */
export const drones = pgTable(
  'drones',
  {
    fleetId: text('fleet_id').notNull(),
    id: text('id').notNull(),
    online: boolean('online').notNull().default(false),
    /** DroneState, or 'stale' when silent for longer than STALE_AFTER_S. */
    state: text('state').notNull().default('offline'),
    stationId: text('station_id'),
    model: text('model'),
    firmware: text('firmware'),
    lat: doublePrecision('lat'),
    lon: doublePrecision('lon'),
    altM: real('alt_m'),
    speedMps: real('speed_mps'),
    headingDeg: real('heading_deg'),
    batteryPct: real('battery_pct'),
    deliveryId: text('delivery_id'),
    lastSeq: integer('last_seq'),
    /** `ts` of the newest telemetry, simulated or real. */
    positionAt: at('position_at'),
    /** Wall-clock time the api last heard from it: drives staleness. */
    lastSeenAt: at('last_seen_at'),
    /** When `online` last changed (the will's arrival for a drone that dropped off). */
    onlineChangedAt: at('online_changed_at'),
    offlineReason: text('offline_reason'),
  },
  (t) => [primaryKey({ columns: [t.fleetId, t.id] })],
)

export const stations = pgTable(
  'stations',
  {
    fleetId: text('fleet_id').notNull(),
    id: text('id').notNull(),
    name: text('name').notNull(),
    lat: doublePrecision('lat').notNull(),
    lon: doublePrecision('lon').notNull(),
    capacity: integer('capacity').notNull(),
    docked: jsonb('docked').$type<string[]>().notNull().default([]),
    online: boolean('online').notNull(),
    statusAt: at('status_at').notNull(),
    onlineChangedAt: at('online_changed_at'),
  },
  (t) => [primaryKey({ columns: [t.fleetId, t.id] })],
)

/**
 * Every position report. Partitioned by day on `ts` (see the migration: drizzle-kit
 * cannot declare partitions), so that retention drops whole days.
 */
export const telemetry = pgTable(
  'telemetry',
  {
    fleetId: text('fleet_id').notNull(),
    droneId: text('drone_id').notNull(),
    ts: at('ts').notNull(),
    seq: integer('seq').notNull(),
    lat: doublePrecision('lat').notNull(),
    lon: doublePrecision('lon').notNull(),
    altM: real('alt_m').notNull(),
    speedMps: real('speed_mps').notNull(),
    headingDeg: real('heading_deg').notNull(),
    batteryPct: real('battery_pct').notNull(),
    state: text('state').notNull(),
    deliveryId: text('delivery_id'),
    receivedAt: at('received_at').notNull(),
  },
  // The key de-duplicates redelivered messages and serves a drone's track over time.
  (t) => [primaryKey({ columns: [t.fleetId, t.droneId, t.ts, t.seq] })],
)

/** Events drones report, de-duplicated by their id. */
export const droneEvents = pgTable(
  'drone_events',
  {
    id: text('id').primaryKey(),
    fleetId: text('fleet_id').notNull(),
    droneId: text('drone_id').notNull(),
    type: text('type').notNull(),
    ts: at('ts').notNull(),
    deliveryId: text('delivery_id'),
    stationId: text('station_id'),
    detail: text('detail'),
    receivedAt: at('received_at').notNull(),
  },
  (t) => [index('drone_events_drone_ts').on(t.fleetId, t.droneId, t.ts)],
)

/** Online/offline changes of drones and stations. */
export const presenceChanges = pgTable(
  'presence_changes',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    fleetId: text('fleet_id').notNull(),
    kind: text('kind', { enum: ['drone', 'station'] }).notNull(),
    deviceId: text('device_id').notNull(),
    online: boolean('online').notNull(),
    reason: text('reason'),
    at: at('at').notNull(),
  },
  (t) => [index('presence_changes_device_at').on(t.fleetId, t.kind, t.deviceId, t.at)],
)

/** Messages that did not decode or that the database refused: the dead-letter table. */
export const rejectedMessages = pgTable(
  'rejected_messages',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    topic: text('topic').notNull(),
    sizeBytes: integer('size_bytes').notNull(),
    /** The first bytes of the payload, as text, for a person to read. */
    excerpt: text('excerpt').notNull(),
    reason: text('reason').notNull(),
    /**
     * SHA-256 of topic and payload, hex: a QoS 1 redelivery is stored once (see
     * ingest/dead-letter.ts for why this key). Rows from before it: `legacy-{id}`.
     */
    digest: text('digest').notNull(),
    receivedAt: at('received_at').notNull(),
  },
  (t) => [uniqueIndex('rejected_messages_digest').on(t.digest)],
)

export { DELIVERY_STATUSES, type DeliveryStatus }

/** A delivery and the times of its lifecycle (ARCHITECTURE.md "Delivery lifecycle"). */
export const deliveries = pgTable(
  'deliveries',
  {
    id: text('id').primaryKey(),
    fleetId: text('fleet_id').notNull(),
    status: text('status', { enum: DELIVERY_STATUSES }).notNull(),
    /** Who asked: a station's DeliveryRequest or an operator through REST. */
    source: text('source', { enum: ['station', 'api'] }).notNull(),
    pickupStationId: text('pickup_station_id').notNull(),
    dropoffStationId: text('dropoff_station_id').notNull(),
    payloadKg: real('payload_kg').notNull(),
    droneId: text('drone_id'),
    /** Great-circle distance pick-up to drop-off, metres. */
    distanceM: real('distance_m'),
    requestedAt: at('requested_at').notNull(),
    assignedAt: at('assigned_at'),
    pickedUpAt: at('picked_up_at'),
    departedAt: at('departed_at'),
    arrivedAt: at('arrived_at'),
    completedAt: at('completed_at'),
    failedAt: at('failed_at'),
    cancelledAt: at('cancelled_at'),
    failureReason: text('failure_reason'),
    /** Drones that refused it or did not answer: the dispatcher does not ask them again. */
    declinedBy: jsonb('declined_by').$type<string[]>().notNull().default([]),
    /** The last ETA computed while in flight, and its error against the arrival, s. */
    etaAt: at('eta_at'),
    etaErrorS: real('eta_error_s'),
    /**
     * The ETA promised at assignment, on the drone's clock as `etaAt` (delivery/promise.ts);
     * cleared with `assignedAt` when it goes back to the queue. `delivery_late` judges by it.
     */
    promisedAt: at('promised_at'),
    /**
     * Since when its route has crossed an active no-fly zone, while it waits (requested);
     * null when it does not. Past ROUTE_BLOCKED_TIMEOUT_S it fails `route_blocked`.
     */
    routeBlockedSince: at('route_blocked_since'),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [
    index('deliveries_fleet_requested').on(t.fleetId, t.requestedAt, t.id),
    index('deliveries_status').on(t.status),
    index('deliveries_drone').on(t.droneId),
  ],
)

/** Every transition of a delivery, with its time. */
export const deliveryEvents = pgTable(
  'delivery_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    deliveryId: text('delivery_id').notNull(),
    status: text('status', { enum: DELIVERY_STATUSES }).notNull(),
    at: at('at').notNull(),
    detail: text('detail'),
  },
  (t) => [index('delivery_events_delivery_at').on(t.deliveryId, t.at)],
)

/**
 * The ETA a delivery's customer saw at fixed horizons of its flight, and its error against
 * the arrival (ARCHITECTURE.md "ETA"): `departure` and `half` are stored when the flight
 * crosses them (`error_s` null until it arrives), `t-5min` and `t-1min` at the arrival.
 */
export const deliveryEtaHorizons = pgTable(
  'delivery_eta_horizons',
  {
    deliveryId: text('delivery_id').notNull(),
    horizon: text('horizon', { enum: ETA_HORIZONS }).notNull(),
    /** The drone's `ts` of the point the ETA was computed from. */
    predictedAt: at('predicted_at').notNull(),
    etaAt: at('eta_at').notNull(),
    /** `eta_at` − the arrival, s (positive: it arrived early); null until it arrives. */
    errorS: real('error_s'),
  },
  (t) => [primaryKey({ columns: [t.deliveryId, t.horizon] })],
)

/**
 * Who leads the api instances on this database (docs/architecture.md "Several api
 * instances"): the one that runs the ingest session, the dispatcher and the timers. A
 * lease, renewed by its holder before `expires_at` (the database's clock); `epoch` rises
 * at each new holder and fences the leader's writes, so a paused old leader cannot
 * write after another took over.
 */
export const leaderLease = pgTable('leader_lease', {
  name: text('name').primaryKey(),
  holder: text('holder').notNull(),
  epoch: bigint('epoch', { mode: 'number' }).notNull(),
  expiresAt: at('expires_at').notNull(),
})

/**
 * No-fly zones and areas of a fleet (docs/architecture.md "No-fly zones and areas"): a
 * GeoJSON Polygon or MultiPolygon, validated before it is stored, active between
 * `active_from` (inclusive) and `active_until` (exclusive), either end open when null.
 */
export const geofences = pgTable(
  'geofences',
  {
    id: text('id').primaryKey(),
    fleetId: text('fleet_id').notNull(),
    name: text('name').notNull(),
    kind: text('kind', { enum: GEOFENCE_KINDS }).notNull(),
    geometry: jsonb('geometry').$type<GeofenceGeometry>().notNull(),
    activeFrom: at('active_from'),
    activeUntil: at('active_until'),
    /** An area whose entering and leaving raise alerts. */
    notifyOnEnterLeave: boolean('notify_on_enter_leave').notNull().default(false),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [index('geofences_fleet').on(t.fleetId, t.id)],
)

/**
 * Alerts (docs/architecture.md "Alerts"), one row per alert: opened by the leader's
 * evaluation, acknowledged by an operator, resolved when its condition clears. Its subject
 * is the ids it names (`subject_key` spells them once, `drone:d1/zone:z1`); at most one
 * alert of a kind and subject is not resolved at a time (the partial unique index).
 */
export const alerts = pgTable(
  'alerts',
  {
    id: text('id').primaryKey(),
    fleetId: text('fleet_id').notNull(),
    kind: text('kind', { enum: ALERT_KINDS }).notNull(),
    severity: text('severity', { enum: ALERT_SEVERITIES }).notNull(),
    state: text('state', { enum: ALERT_STATES }).notNull(),
    subjectKey: text('subject_key').notNull(),
    droneId: text('drone_id'),
    stationId: text('station_id'),
    deliveryId: text('delivery_id'),
    zoneId: text('zone_id'),
    openedAt: at('opened_at').notNull(),
    acknowledgedAt: at('acknowledged_at'),
    /** The `sub` of the operator who acknowledged it. */
    acknowledgedBy: text('acknowledged_by'),
    resolvedAt: at('resolved_at'),
    /** When the row last changed (opened, acknowledged, resolved): the payload's `ts`. */
    updatedAt: at('updated_at').notNull(),
    facts: jsonb('facts').$type<Record<string, unknown>>().notNull(),
  },
  (t) => [
    uniqueIndex('alerts_one_open')
      .on(t.fleetId, t.kind, t.subjectKey)
      .where(sql`${t.state} <> 'resolved'`),
    index('alerts_fleet_opened').on(t.fleetId, t.openedAt, t.id),
    index('alerts_opened').on(t.openedAt, t.id),
  ],
)

/**
 * The alerts' webhook outbox (ALERT_WEBHOOK_URL): one row per alert change to deliver,
 * written in the change's transaction, so a change committed is a change sent, across a
 * restart. A row is delivered (`delivered_at`), waiting for its next attempt
 * (`next_attempt_at`), or dead (`dead_at`: the last attempt failed, `last_error` says why).
 */
export const alertWebhookOutbox = pgTable(
  'alert_webhook_outbox',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    alertId: text('alert_id').notNull(),
    fleetId: text('fleet_id').notNull(),
    /** The request body, exactly as signed and sent (the Alert payload, JSON). */
    body: text('body').notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: at('next_attempt_at').notNull(),
    lastError: text('last_error'),
    createdAt: at('created_at').notNull(),
    deliveredAt: at('delivered_at'),
    deadAt: at('dead_at'),
  },
  (t) => [
    index('alert_webhook_outbox_due')
      .on(t.nextAttemptAt, t.id)
      .where(sql`${t.deliveredAt} IS NULL AND ${t.deadAt} IS NULL`),
  ],
)
