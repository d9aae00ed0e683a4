import type { DeliveryStatus } from '@skyline/schemas'

/**
 * Told the id of a delivery whose row changed, once the change is committed, and its new
 * status when the change is a transition the lifecycle made outside the ingest (the
 * ingest tells the deliveries a batch touched, without status).
 */
export type DeliveryListener = (deliveryId: string, status?: DeliveryStatus) => void

/**
 * The one stream of delivery changes (issue 15): whoever commits a change to a delivery
 * (a REST request or cancel, the dispatcher, a drone's event or position through the
 * ingest) emits it here after the commit, and whoever shows or acts on deliveries (the
 * live stream; later alerts) subscribes, rather than each writer knowing each reader.
 * A listener that throws is reported, and the others are still told.
 */
export class DeliveryChanges {
  private readonly listeners = new Set<DeliveryListener>()

  constructor(private readonly onError: (err: unknown, deliveryId: string) => void) {}

  /** Returns the way to unsubscribe. */
  subscribe(listener: DeliveryListener): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  emit(deliveryId: string, status?: DeliveryStatus): void {
    for (const listener of this.listeners) {
      try {
        listener(deliveryId, status)
      } catch (err) {
        this.onError(err, deliveryId)
      }
    }
  }
}
