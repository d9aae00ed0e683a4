import fp from 'fastify-plugin'
import { DeliveryChanges } from '../../delivery/changes.ts'
import { DeliveryLifecycle } from '../../delivery/lifecycle.ts'
import { DeliveryRepository } from '../../delivery/repository.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Reads of deliveries. */
    deliveries: DeliveryRepository
    /** The only writer of a delivery's status, and the stream of its changes. */
    lifecycle: DeliveryLifecycle
  }
}

/** Deliveries: what REST and the live stream read, and the lifecycle that moves them. */
export default fp<{ now?: () => Date }>(
  async (fastify, opts) => {
    const { db } = fastify.database
    const changes = new DeliveryChanges((err, id) =>
      fastify.log.error({ err, deliveryId: id }, 'a delivery change listener failed'),
    )
    fastify.decorate('deliveries', new DeliveryRepository(db))
    fastify.decorate(
      'lifecycle',
      new DeliveryLifecycle(
        db,
        changes,
        (topic, command) => fastify.mqtt.sendCommand(topic, command),
        fastify.log,
        opts.now,
        (tx) => fastify.leadership.fence(tx),
      ),
    )
  },
  { name: 'deliveries', dependencies: ['database', 'mqtt', 'leadership'] },
)
