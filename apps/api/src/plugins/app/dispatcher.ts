import fp from 'fastify-plugin'
import { FINISHED_STATUSES } from '@skyline/schemas'
import { Dispatcher } from '../../delivery/dispatcher.ts'

declare module 'fastify' {
  interface FastifyInstance {
    dispatcher: Dispatcher
  }
}

/**
 * The dispatcher, on the leading instance only: every second and as soon as a delivery
 * is requested or a drone is freed by a change the lifecycle made (the ingest's moves
 * wait for the next second).
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
        routeBlockedTimeoutS: fastify.config.ROUTE_BLOCKED_TIMEOUT_S,
        routes: (fleetId, from, to, at) => fastify.geofences.index.crossing(fleetId, from, to, at),
      },
      opts.now,
    )
    let leading = false
    const unsubscribe = fastify.lifecycle.changes.subscribe((_id, status) => {
      if (leading && (status === 'requested' || FINISHED_STATUSES.some((s) => s === status)))
        void dispatcher.tick()
    })
    fastify.leadership.lead('dispatcher', {
      start() {
        leading = true
        dispatcher.start()
      },
      async stop() {
        leading = false
        await dispatcher.stop()
      },
    })
    fastify.decorate('dispatcher', dispatcher)
    fastify.addHook('onClose', async () => {
      unsubscribe()
      leading = false
      await dispatcher.stop()
    })
  },
  { name: 'dispatcher', dependencies: ['database', 'deliveries', 'leadership', 'geofences'] },
)
