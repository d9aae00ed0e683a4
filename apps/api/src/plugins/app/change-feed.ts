import fp from 'fastify-plugin'
import { sql } from 'drizzle-orm'
import { CHANGES_CHANNEL, ChangeCollector, peerNotice } from '../../cluster/change-feed.ts'
import type { IngestItem } from '../../ingest/items.ts'

declare module 'fastify' {
  interface FastifyInstance {
    changeFeed: ChangeFeed
  }
}

export interface ChangeFeed {
  /** An ingest batch was committed (by the leader). */
  committed(items: readonly IngestItem[]): void
  /** A drone's row changed outside the ingest (the stale sweep). */
  drone(fleetId: string, id: string): void
}

/** How often what changed is told to the other instances, ms. */
const FEED_MS = 100

/**
 * What one api instance commits reaches the live streams of the others
 * (docs/architecture.md "Several api instances"): every FEED_MS it NOTIFYs the keys of
 * the drones, stations and deliveries that changed, and it LISTENs for theirs, which its
 * live stream reads from the database for its next frame; and the fleets whose zones it
 * changed, which the others' geofence index reads again. With PGlite there is one
 * instance only, and nothing to tell.
 */
export default fp(
  async (fastify) => {
    const { database, geofences, instanceId, live, lifecycle, log } = fastify
    if (database.listen === undefined) {
      fastify.decorate('changeFeed', { committed() {}, drone() {} } satisfies ChangeFeed)
      return
    }
    const collector = new ChangeCollector(instanceId)
    const unlisten = await database.listen(CHANGES_CHANNEL, (payload) => {
      const notice = peerNotice(payload, instanceId)
      if (notice === undefined) return
      live.toldByPeer(notice)
      for (const fleetId of notice.geofences)
        geofences
          .refresh(fleetId)
          .catch((err: unknown) => log.warn({ err, fleetId }, 'geofences: refresh failed'))
    })
    const unsubscribe = lifecycle.changes.subscribe((id) => collector.delivery(id))
    const unsubscribeZones = geofences.onChange((fleetId) => collector.geofence(fleetId))
    const unsubscribeAlerts = fastify.alerts.service.onChange((alert) => collector.alert(alert.id))
    let telling: Promise<unknown> = Promise.resolve()
    const tell = () => {
      const payloads = collector.flush()
      if (payloads.length === 0) return
      // One statement for them all; told in order, one flush after the other.
      telling = telling.then(() =>
        database.db
          .execute(
            sql`SELECT pg_notify(${CHANGES_CHANNEL}, p)
                FROM json_array_elements_text(${JSON.stringify(payloads)}::json) AS p`,
          )
          .catch((err: unknown) => log.warn({ err }, 'change feed: NOTIFY failed')),
      )
    }
    const timer = setInterval(tell, FEED_MS)
    fastify.decorate('changeFeed', {
      committed: (items) => collector.committed(items),
      drone: (fleetId, id) => collector.drone(fleetId, id),
    } satisfies ChangeFeed)
    fastify.addHook('onClose', async () => {
      clearInterval(timer)
      unsubscribe()
      unsubscribeZones()
      unsubscribeAlerts()
      tell()
      await telling
      await unlisten().catch(() => {})
    })
  },
  {
    name: 'change-feed',
    dependencies: ['database', 'leadership', 'live', 'deliveries', 'geofences', 'alerts'],
  },
)
