import type { DeliveryStatus } from '@skyline/schemas'

/**
 * The delivery lifecycle (docs/architecture.md "Delivery lifecycle"): every status a
 * delivery may move to from each status. The lifecycle (lifecycle.ts) refuses any move
 * not listed here; who moves it, and when, is documented beside each move there.
 */
export const TRANSITIONS: Readonly<Record<DeliveryStatus, readonly DeliveryStatus[]>> = {
  // Dispatched, failed by the dispatcher (unknown station, declined by too many drones),
  // cancelled by an operator.
  requested: ['assigned', 'failed', 'cancelled'],
  // Back to requested: refused, not accepted in time. Forward: the drone's events, which
  // may skip steps.
  assigned: [
    'requested',
    'to_pickup',
    'picked_up',
    'en_route',
    'arrived',
    'completed',
    'failed',
    'cancelled',
  ],
  // Back to requested: its drone was lost or abandoned it before the pick-up.
  to_pickup: ['requested', 'picked_up', 'en_route', 'arrived', 'completed', 'failed', 'cancelled'],
  picked_up: ['en_route', 'arrived', 'completed', 'failed', 'cancelled'],
  en_route: ['arrived', 'completed', 'failed', 'cancelled'],
  arrived: ['completed', 'failed', 'cancelled'],
  completed: [],
  // Only a delivery failed as `drone_lost` or `abandoned` moves on: its drone came back
  // and carries on with it (the payload was on board), or an operator cancels it.
  failed: ['picked_up', 'en_route', 'arrived', 'completed', 'cancelled'],
  cancelled: [],
}

/** Statuses in which a delivery occupies its drone. */
export const ACTIVE = [
  'assigned',
  'to_pickup',
  'picked_up',
  'en_route',
  'arrived',
] as const satisfies readonly DeliveryStatus[]

/** Active, and the drone has said it works on it (it accepted). */
export const UNDERWAY = [
  'to_pickup',
  'picked_up',
  'en_route',
  'arrived',
] as const satisfies readonly DeliveryStatus[]

/** Active, and the payload is on board: a lost drone fails it rather than giving it back. */
export const LOADED: readonly DeliveryStatus[] = ['picked_up', 'en_route', 'arrived']

/** Why reconciliation ended a delivery (or gave it back) without its drone's word. */
export const LOST_REASONS = ['drone_lost', 'abandoned'] as const
export type LostReason = (typeof LOST_REASONS)[number]

/** How far along a status is: a drone's event only ever moves a delivery forward. */
export const RANK: Readonly<Record<DeliveryStatus, number>> = {
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

export function allowed(from: DeliveryStatus, to: DeliveryStatus): boolean {
  return TRANSITIONS[from].includes(to)
}
