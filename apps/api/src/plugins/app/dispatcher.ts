import fp from 'fastify-plugin'
import { FINISHED_STATUSES } from '@skyline/schemas'
import { Dispatcher } from '../../delivery/dispatcher.ts'

declare module 'fastify' {
  interface FastifyInstance {
    dispatcher: Dispatcher
  }
}

/**
 * The dispatcher, every second and as soon as a delivery is requested or a drone is
 * freed by a change the lifecycle made (the ingest's moves wait for the next second).
 */
export default fp<{ now?: () => Date }>(
  async (fastify, opts) => {
    const dispatcher = new Dispatcher(
      fastify.database.db,
      fastify.lifecycle,
      fastify.log,
      {
        staleAfterS: fastify.config.STALE_AFTER_S,
        acceptTimeoutS: fastify.config.ACCEPT_TIMEOUT_S,
      },
      opts.now,
    )
    const unsubscribe = fastify.lifecycle.changes.subscribe((_id, status) => {
      if (status === 'requested' || FINISHED_STATUSES.some((s) => s === status))
        void dispatcher.tick()
    })
    dispatcher.start()
    fastify.decorate('dispatcher', dispatcher)
    fastify.addHook('onClose', async () => {
      unsubscribe()
      await dispatcher.stop()
    })
  },
  { name: 'dispatcher', dependencies: ['database', 'deliveries'] },
)
