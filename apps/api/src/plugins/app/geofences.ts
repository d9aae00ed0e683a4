import fp from 'fastify-plugin'
import { GeofenceRepository } from '../../geofence/repository.ts'
import { GeofenceService } from '../../geofence/service.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * No-fly zones and areas: `geofences.repository` reads them (REST), the service writes
     * them, and `geofences.index` answers where they are (`zonesAt`, `crossing`, and
     * `breachesIn`, the ingest's per-telemetry check for the alerts).
     */
    geofences: GeofenceService
  }
}

/**
 * Every zone is read again this often, ms: what a change feed notice lost on the way
 * (another instance's change while this one's LISTEN connection was down) is made good
 * within it.
 */
export const GEOFENCE_RELOAD_MS = 30_000

/**
 * The zones, held in memory by every instance: loaded at start, refreshed per fleet after
 * each change made here or told by another instance (plugins/app/change-feed.ts), and
 * read whole every GEOFENCE_RELOAD_MS.
 */
export default fp<{ now?: () => Date }>(
  async (fastify, opts) => {
    const service = new GeofenceService(
      new GeofenceRepository(fastify.database.db),
      fastify.log,
      opts.now,
    )
    const reload = () =>
      service
        .reloadAll()
        .catch((err: unknown) => fastify.log.warn({ err }, 'geofences: reload failed'))
    await reload()
    const timer = setInterval(() => void reload(), GEOFENCE_RELOAD_MS)
    fastify.decorate('geofences', service)
    fastify.addHook('onClose', async () => {
      clearInterval(timer)
      await service.idle() // a load under way ends before the database closes
    })
  },
  { name: 'geofences', dependencies: ['database'] },
)
