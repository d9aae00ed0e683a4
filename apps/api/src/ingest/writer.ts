import { and, eq, lt, ne, sql } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import type { TelemetryPartitions } from '../db/partitions.ts'
import {
  deliveries,
  deliveryEvents,
  droneEvents,
  drones,
  presenceChanges,
  rejectedMessages,
  stations,
  telemetry,
} from '../db/schema.ts'
import type { DeliveryStatus } from '../db/schema.ts'
import { applyDroneEvent } from './lifecycle.ts'
import type { EtaEstimator } from './eta.ts'
import type { IngestItem } from './items.ts'

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]
type Of<K extends IngestItem['kind']> = Extract<IngestItem, { kind: K }>

/** Rows per INSERT: 13 columns × 2,000 stays well under Postgres's 65,535 parameters. */
const CHUNK = 2_000

/**
 * Writes one batch in one transaction: either every row of it is committed (and the
 * messages may be acknowledged) or none is (and the broker redelivers them).
 * Redelivered duplicates change nothing: telemetry and events are keyed, requests by id.
 */
export async function writeBatch(
  db: Db,
  partitions: TelemetryPartitions,
  eta: EtaEstimator,
  items: IngestItem[],
): Promise<void> {
  const by = <K extends IngestItem['kind']>(kind: K) =>
    items.filter((i): i is Of<K> => i.kind === kind)
  const points = by('telemetry')
  await partitions.ensureFor(points.map((p) => new Date(p.msg.ts)))
  await db.transaction(async (tx) => {
    await writeRejected(tx, by('rejected'))
    await writeTelemetry(tx, points)
    await eta.update(
      tx,
      points.flatMap(({ fleetId, msg }) =>
        msg.deliveryId !== undefined ? [{ ...msg, fleetId, deliveryId: msg.deliveryId }] : [],
      ),
    )
    for (const item of by('drone-status')) await writeDroneStatus(tx, item)
    for (const item of by('station-status')) await writeStationStatus(tx, item)
    for (const item of by('delivery-request')) await writeRequest(tx, item)
    for (const item of by('drone-event')) await writeDroneEvent(tx, item)
  })
  for (const { msg } of by('drone-event')) {
    if (
      msg.deliveryId !== undefined &&
      (msg.type === 'delivery.arrived' || msg.type === 'delivery.failed')
    ) {
      eta.forget(msg.deliveryId)
    }
  }
}

async function writeRejected(tx: Tx, items: Of<'rejected'>[]): Promise<void> {
  if (items.length === 0) return
  await tx
    .insert(rejectedMessages)
    .values(items.map(({ kind: _kind, ...row }) => row))
    // Seen before: a redelivery of a message whose PUBACK was lost (dead-letter.ts).
    .onConflictDoNothing({ target: rejectedMessages.digest })
}

async function writeTelemetry(tx: Tx, items: Of<'telemetry'>[]): Promise<void> {
  for (let i = 0; i < items.length; i += CHUNK) {
    const rows = items.slice(i, i + CHUNK).map(({ fleetId, droneId, msg, receivedAt }) => ({
      fleetId,
      droneId,
      ts: new Date(msg.ts),
      seq: msg.seq,
      lat: msg.lat,
      lon: msg.lon,
      altM: msg.altM,
      speedMps: msg.speedMps,
      headingDeg: msg.headingDeg,
      batteryPct: msg.batteryPct,
      state: msg.state,
      deliveryId: msg.deliveryId ?? null,
      receivedAt,
    }))
    await tx.insert(telemetry).values(rows).onConflictDoNothing()
  }
  // The latest position of each drone in the batch becomes its current state.
  const latest = new Map<string, Of<'telemetry'>>()
  for (const item of items) {
    const key = `${item.fleetId}/${item.droneId}`
    const seen = latest.get(key)
    if (seen === undefined || item.msg.ts >= seen.msg.ts) latest.set(key, item)
  }
  const rows = [...latest.values()].map(({ fleetId, droneId, msg, receivedAt }) => ({
    fleetId,
    id: droneId,
    state: msg.state,
    lat: msg.lat,
    lon: msg.lon,
    altM: msg.altM,
    speedMps: msg.speedMps,
    headingDeg: msg.headingDeg,
    batteryPct: msg.batteryPct,
    deliveryId: msg.deliveryId ?? null,
    lastSeq: msg.seq,
    positionAt: new Date(msg.ts),
    lastSeenAt: receivedAt,
  }))
  for (let i = 0; i < rows.length; i += CHUNK) {
    await tx
      .insert(drones)
      .values(rows.slice(i, i + CHUNK))
      .onConflictDoUpdate({
        target: [drones.fleetId, drones.id],
        set: {
          state: sql`CASE WHEN ${drones.online} THEN excluded.state ELSE ${drones.state} END`,
          lat: sql`excluded.lat`,
          lon: sql`excluded.lon`,
          altM: sql`excluded.alt_m`,
          speedMps: sql`excluded.speed_mps`,
          headingDeg: sql`excluded.heading_deg`,
          batteryPct: sql`excluded.battery_pct`,
          deliveryId: sql`excluded.delivery_id`,
          lastSeq: sql`excluded.last_seq`,
          positionAt: sql`excluded.position_at`,
          lastSeenAt: sql`excluded.last_seen_at`,
        },
        // An older position arriving late (a redelivery) does not move the drone back.
        setWhere: sql`${drones.positionAt} IS NULL OR excluded.position_at >= ${drones.positionAt}`,
      })
  }
}

async function writeDroneStatus(
  tx: Tx,
  { fleetId, droneId, msg, receivedAt }: Of<'drone-status'>,
): Promise<void> {
  const changed = await onlineChanges(tx, drones, fleetId, droneId, msg.online)
  const row = {
    online: msg.online,
    state: msg.online ? msg.state : 'offline',
    stationId: msg.stationId ?? null,
    lastSeenAt: receivedAt,
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

async function writeRequest(
  tx: Tx,
  { fleetId, stationId, msg, receivedAt }: Of<'delivery-request'>,
): Promise<void> {
  const requestedAt = new Date(msg.ts)
  const inserted = await tx
    .insert(deliveries)
    .values({
      id: msg.id,
      fleetId,
      status: 'requested' satisfies DeliveryStatus,
      source: 'station',
      pickupStationId: stationId,
      dropoffStationId: msg.dropoffStationId,
      payloadKg: msg.payloadKg,
      requestedAt,
      updatedAt: receivedAt,
    })
    .onConflictDoNothing()
    .returning({ id: deliveries.id })
  if (inserted.length > 0) {
    await tx
      .insert(deliveryEvents)
      .values({ deliveryId: msg.id, status: 'requested', at: requestedAt })
  }
}

async function writeDroneEvent(
  tx: Tx,
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
  if (inserted.length > 0) await applyDroneEvent(tx, fleetId, droneId, msg, receivedAt)
}

/** Marks online drones last heard before `cutoff` as stale; returns them. */
export function markStale(db: Db, cutoff: Date): Promise<{ fleetId: string; id: string }[]> {
  return db
    .update(drones)
    .set({ state: 'stale' })
    .where(and(eq(drones.online, true), ne(drones.state, 'stale'), lt(drones.lastSeenAt, cutoff)))
    .returning({ fleetId: drones.fleetId, id: drones.id })
}
