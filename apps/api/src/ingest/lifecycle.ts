import { and, eq } from 'drizzle-orm'
import type { DroneEvent } from '@skyline/schemas'
import type { Db } from '../db/client.ts'
import { deliveries, deliveryEvents } from '../db/schema.ts'
import type { DeliveryStatus } from '../db/schema.ts'
import { requeue } from '../plugins/app/dispatcher.ts'

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]

/** How far along the lifecycle a status is; a delivery only moves forward. */
const RANK: Record<DeliveryStatus, number> = {
  requested: 0,
  assigned: 1,
  to_pickup: 2,
  picked_up: 3,
  en_route: 4,
  arrived: 5,
  completed: 6,
  failed: 7,
  cancelled: 7,
}
const TERMINAL: ReadonlySet<DeliveryStatus> = new Set(['completed', 'failed', 'cancelled'])

/** The delivery status a drone event moves to, and which timestamp it sets. */
function transition(
  event: DroneEvent,
  current: DeliveryStatus,
): { status: DeliveryStatus; column?: keyof typeof deliveries.$inferInsert } | null {
  switch (event.type) {
    case 'delivery.accepted':
      return { status: 'to_pickup' }
    case 'delivery.picked_up':
      return { status: 'picked_up', column: 'pickedUpAt' }
    case 'delivery.departed':
      return { status: 'en_route', column: 'departedAt' }
    case 'delivery.arrived':
      return { status: 'arrived', column: 'arrivedAt' }
    case 'delivery.completed':
      return { status: 'completed', column: 'completedAt' }
    case 'delivery.failed':
      // A cancel the api asked for comes back as a failure with detail "cancelled".
      return event.detail === 'cancelled' || current === 'cancelled'
        ? { status: 'cancelled', column: 'cancelledAt' }
        : { status: 'failed', column: 'failedAt' }
    case 'battery.low':
      return null
  }
}

/** Moves the delivery an event names along its lifecycle and records the transition. */
export async function applyDroneEvent(
  tx: Tx,
  fleetId: string,
  droneId: string,
  event: DroneEvent,
  receivedAt: Date,
  /** Told of an arrival inside the transaction (the ETA horizons are scored then). */
  onArrived?: (tx: Tx, deliveryId: string, at: Date) => Promise<void>,
): Promise<void> {
  if (event.deliveryId === undefined) return
  const [delivery] = await tx
    .select({ status: deliveries.status, droneId: deliveries.droneId, etaAt: deliveries.etaAt })
    .from(deliveries)
    .where(and(eq(deliveries.id, event.deliveryId), eq(deliveries.fleetId, fleetId)))
    // Locked until commit: an operator's cancel or the dispatcher cannot slip in between.
    .for('update')
  if (delivery === undefined || TERMINAL.has(delivery.status)) return
  // Another drone's word on it (one it was taken from after a timeout) changes nothing.
  if (delivery.droneId !== droneId) return
  // A refusal of an assignment sends it back to the dispatcher for another drone.
  if (
    event.type === 'delivery.failed' &&
    delivery.status === 'assigned' &&
    event.detail !== 'cancelled'
  ) {
    await requeue(tx, event.deliveryId, droneId, event.detail ?? 'refused', receivedAt)
    return
  }
  const next = transition(event, delivery.status)
  if (next === null || RANK[next.status] <= RANK[delivery.status]) return
  const at = new Date(event.ts)
  await tx
    .update(deliveries)
    .set({
      status: next.status,
      droneId: delivery.droneId ?? droneId,
      updatedAt: receivedAt,
      ...(next.column !== undefined && { [next.column]: at }),
      ...(next.status === 'failed' && { failureReason: event.detail ?? 'failed' }),
      // How far off the last ETA was, seconds (positive: it arrived early).
      ...(next.status === 'arrived' &&
        delivery.etaAt !== null && { etaErrorS: (delivery.etaAt.getTime() - at.getTime()) / 1000 }),
    })
    .where(eq(deliveries.id, event.deliveryId))
  await tx
    .insert(deliveryEvents)
    .values({ deliveryId: event.deliveryId, status: next.status, at, detail: event.detail ?? null })
  if (next.status === 'arrived') await onArrived?.(tx, event.deliveryId, at)
}
