import { and, eq, lt, ne, sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import type { TelemetryPartitions } from '../db/partitions.ts'
import type { DeliveryLifecycle } from '../delivery/lifecycle.ts'
import {
  droneEvents,
  drones,
  presenceChanges,
  rejectedMessages,
  stations,
  telemetry,
} from '../db/schema.ts'
import type { IngestItem } from './items.ts'

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]
type Of<K extends IngestItem['kind']> = Extract<IngestItem, { kind: K }>

/** What the facts of a batch mean for deliveries: the lifecycle decides, in the batch's transaction. */
export type DeliveryFacts = Pick<
  DeliveryLifecycle,
  'positions' | 'requestedByStation' | 'droneEvent'
>

/**
 * Writes one batch in one transaction: either every row of it is committed (and the
 * messages may be acknowledged) or none is (and the broker redelivers them).
 * Redelivered duplicates change nothing: telemetry and events are keyed, requests by id.
 */
export async function writeBatch(
  db: Db,
  partitions: TelemetryPartitions,
  deliveries: DeliveryFacts,
  items: IngestItem[],
  /** Refuses the transaction unless this instance still leads (cluster/lease.ts). */
  fence: (tx: Tx) => Promise<void> = async () => {},
): Promise<void> {
  const by = <K extends IngestItem['kind']>(kind: K) =>
    items.filter((i): i is Of<K> => i.kind === kind)
  const points = by('telemetry')
  await partitions.ensureFor(points.map((p) => new Date(p.msg.ts)))
  await db.transaction(async (tx) => {
    await fence(tx)
    await writeRejected(tx, by('rejected'))
    await writeTelemetry(tx, points)
    await deliveries.positions(
      tx,
      points.flatMap(({ fleetId, msg }) =>
        msg.deliveryId !== undefined ? [{ ...msg, fleetId, deliveryId: msg.deliveryId }] : [],
      ),
    )
    for (const item of by('drone-status')) await writeDroneStatus(tx, item)
    for (const item of by('station-status')) await writeStationStatus(tx, item)
    for (const { fleetId, stationId, msg, receivedAt } of by('delivery-request'))
      await deliveries.requestedByStation(tx, fleetId, stationId, msg, receivedAt)
    for (const item of by('drone-event')) await writeDroneEvent(tx, deliveries, item)
  })
}

async function writeRejected(tx: Tx, items: Of<'rejected'>[]): Promise<void> {
  if (items.length === 0) return
  await tx
    .insert(rejectedMessages)
    .values(items.map(({ kind: _kind, ...row }) => row))
    // Seen before: a redelivery of a message whose PUBACK was lost (dead-letter.ts).
    .onConflictDoNothing({ target: rejectedMessages.digest })
}

/**
 * Telemetry rows and the drones' latest positions in one statement of one parameter: the
 * rows as a JSON array, unpacked once by json_to_recordset. A multi-row VALUES list has
 * a different text for every batch size, so postgres.js prepared (parsed and planned) a
 * new statement of up to 26,000 parameters for nearly every batch, and kept each one: at
 * 5,000 msg/s a 174-row batch took 68 ms. A statement whose text never changes is
 * prepared once. The positions come from the same rows, the latest of each drone
 * (DISTINCT ON), rather than from a second document: building, sending and parsing the
 * JSON was a third of the write's cost (issue #7).
 */
async function writeTelemetry(tx: Tx, items: Of<'telemetry'>[]): Promise<void> {
  if (items.length === 0) return
  const rows = items.map(({ fleetId, droneId, msg, receivedAt }, n) => ({
    n,
    fleet_id: fleetId,
    drone_id: droneId,
    ts: new Date(msg.ts).toISOString(),
    seq: msg.seq,
    lat: msg.lat,
    lon: msg.lon,
    alt_m: msg.altM,
    speed_mps: msg.speedMps,
    heading_deg: msg.headingDeg,
    battery_pct: msg.batteryPct,
    state: msg.state,
    delivery_id: msg.deliveryId ?? null,
    received_at: receivedAt.toISOString(),
  }))
  await tx.execute(sql`
    WITH r AS (
      SELECT * FROM json_to_recordset(${JSON.stringify(rows)}::json) AS r(n integer,
        fleet_id text, drone_id text, ts timestamptz, seq integer, lat double precision,
        lon double precision, alt_m real, speed_mps real, heading_deg real, battery_pct real,
        state text, delivery_id text, received_at timestamptz)
    ), points AS (
      INSERT INTO ${telemetry} (fleet_id, drone_id, ts, seq, lat, lon, alt_m, speed_mps,
        heading_deg, battery_pct, state, delivery_id, received_at)
      SELECT fleet_id, drone_id, ts, seq, lat, lon, alt_m, speed_mps, heading_deg,
        battery_pct, state, delivery_id, received_at FROM r
      ON CONFLICT DO NOTHING
    )
    -- Each drone's latest point becomes its current state: the newest ts, and of equal
    -- ones the last in the batch (n, its place). An older point arriving late (a
    -- redelivery) does not move the drone back, but the drone was heard: last_seen_at
    -- is the api's clock and always moves on, whatever the device's clock says.
    INSERT INTO ${drones} AS d (fleet_id, id, state, lat, lon, alt_m, speed_mps, heading_deg,
      battery_pct, delivery_id, last_seq, position_at, last_seen_at)
    SELECT DISTINCT ON (fleet_id, drone_id) fleet_id, drone_id, state, lat, lon, alt_m,
      speed_mps, heading_deg, battery_pct, delivery_id, seq, ts, received_at
    FROM r ORDER BY fleet_id, drone_id, ts DESC, n DESC
    ON CONFLICT (fleet_id, id) DO UPDATE SET
      state = CASE WHEN ${NEWER} AND d.online THEN excluded.state ELSE d.state END,
      ${POSITION_UPDATES},
      last_seen_at = GREATEST(d.last_seen_at, excluded.last_seen_at)`)
}

/** A point at least as new as the drone's position replaces it (state too, while online). */
const NEWER_SQL = '(d.position_at IS NULL OR excluded.position_at >= d.position_at)'
const NEWER = sql.raw(NEWER_SQL)
const POSITION_UPDATES = sql.raw(
  [
    'lat',
    'lon',
    'alt_m',
    'speed_mps',
    'heading_deg',
    'battery_pct',
    'delivery_id',
    'last_seq',
    'position_at',
  ]
    .map((c) => `${c} = CASE WHEN ${NEWER_SQL} THEN excluded.${c} ELSE d.${c} END`)
    .join(', '),
)

async function writeDroneStatus(
  tx: Tx,
  { fleetId, droneId, msg, receivedAt }: Of<'drone-status'>,
): Promise<void> {
  const changed = await onlineChanges(tx, drones, fleetId, droneId, msg.online)
  const row = {
    online: msg.online,
    state: msg.online ? msg.state : 'offline',
    stationId: msg.stationId ?? null,
    // A will is the broker's word that the drone is gone, not the drone heard: the drone
    // was last heard before it (what "signal lost" shows, and what loss is counted from).
    ...(msg.online && { lastSeenAt: receivedAt }),
    offlineReason: msg.online ? null : (msg.reason ?? null),
    ...(msg.model !== undefined && { model: msg.model }),
    ...(msg.firmware !== undefined && { firmware: msg.firmware }),
    // The will's ts is from when the drone connected: the change is when it arrived.
    ...(changed && { onlineChangedAt: receivedAt }),
  }
  await tx
    .insert(drones)
    .values({ fleetId, id: droneId, ...row })
    .onConflictDoUpdate({ target: [drones.fleetId, drones.id], set: row })
  if (changed) await recordPresence(tx, 'drone', fleetId, droneId, msg, receivedAt)
}

async function writeStationStatus(
  tx: Tx,
  { fleetId, stationId, msg, receivedAt }: Of<'station-status'>,
): Promise<void> {
  const changed = await onlineChanges(tx, stations, fleetId, stationId, msg.online)
  const row = {
    name: msg.name,
    lat: msg.lat,
    lon: msg.lon,
    capacity: msg.capacity,
    docked: msg.docked,
    online: msg.online,
    statusAt: new Date(msg.ts),
    ...(changed && { onlineChangedAt: receivedAt }),
  }
  await tx
    .insert(stations)
    .values({ fleetId, id: stationId, ...row })
    .onConflictDoUpdate({ target: [stations.fleetId, stations.id], set: row })
  if (changed) await recordPresence(tx, 'station', fleetId, stationId, msg, receivedAt)
}

/** Whether this status flips the device's online flag (or is its first). */
async function onlineChanges(
  tx: Tx,
  table: typeof drones | typeof stations,
  fleetId: string,
  id: string,
  online: boolean,
): Promise<boolean> {
  const [before] = await tx
    .select({ online: table.online })
    .from(table)
    .where(and(eq(table.fleetId, fleetId), eq(table.id, id)))
  return before === undefined || before.online !== online
}

/** An online/offline change, at the time it arrived (a will's own ts is from its CONNECT). */
function recordPresence(
  tx: Tx,
  kind: 'drone' | 'station',
  fleetId: string,
  deviceId: string,
  msg: { online: boolean; reason?: string | undefined },
  at: Date,
) {
  return tx
    .insert(presenceChanges)
    .values({ fleetId, kind, deviceId, online: msg.online, reason: msg.reason ?? null, at })
}

async function writeDroneEvent(
  tx: Tx,
  deliveries: DeliveryFacts,
  { fleetId, droneId, msg, receivedAt }: Of<'drone-event'>,
): Promise<void> {
  const inserted = await tx
    .insert(droneEvents)
    .values({
      id: msg.id,
      fleetId,
      droneId,
      type: msg.type,
      ts: new Date(msg.ts),
      deliveryId: msg.deliveryId ?? null,
      stationId: msg.stationId ?? null,
      detail: msg.detail ?? null,
      receivedAt,
    })
    .onConflictDoNothing()
    .returning({ id: droneEvents.id })
  // A redelivered event was applied the first time.
  if (inserted.length > 0) await deliveries.droneEvent(tx, fleetId, droneId, msg, receivedAt)
}

/** Marks online drones last heard before `cutoff` as stale; returns them. */
export function markStale(db: Db, cutoff: Date): Promise<{ fleetId: string; id: string }[]> {
  return db
    .update(drones)
    .set({ state: 'stale' })
    .where(and(eq(drones.online, true), ne(drones.state, 'stale'), lt(drones.lastSeenAt, cutoff)))
    .returning({ fleetId: drones.fleetId, id: drones.id })
}
