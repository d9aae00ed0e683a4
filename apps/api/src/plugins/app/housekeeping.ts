import fp from 'fastify-plugin'
import { markStale } from '../../ingest/writer.ts'

/**
 * The leader's timers: telemetry retention (hourly), the stale sweep (drones silent for
 * STALE_AFTER_S), and the reconciliation of deliveries no drone works on
 * (docs/architecture.md "Reconciliation"), at start and every few seconds. Each is one
 * round at a time; a failed round is logged and the next one tries again.
 */
export default fp(
  async (fastify) => {
    const { config, database, ingest, lifecycle, mqtt, live, log } = fastify
    let timers: NodeJS.Timeout[] = []
    const rounds = new Set<Promise<unknown>>()
    const every = (ms: number, name: string, round: () => Promise<unknown>) => {
      let running: Promise<unknown> | undefined
      const run = () => {
        if (running !== undefined) return
        running = round()
          .catch((err: unknown) => log.warn({ err }, `${name} failed`))
          .finally(() => {
            rounds.delete(running!)
            running = undefined
          })
        rounds.add(running)
      }
      timers.push(setInterval(run, ms))
      run()
    }

    const start = () => {
      // Retention: whole days of telemetry older than TELEMETRY_RETENTION_DAYS go.
      every(3_600_000, 'telemetry retention', async () => {
        const cutoff = new Date(Date.now() - config.TELEMETRY_RETENTION_DAYS * 86_400_000)
        const dropped = await ingest.partitions.dropOlderThan(cutoff)
        if (dropped.length > 0) log.info({ dropped }, 'telemetry retention')
      })

      // The safety net behind the will: an online drone silent for STALE_AFTER_S is marked
      // stale (in the table and on the live stream); its next telemetry clears it.
      const staleAfterMs = config.STALE_AFTER_S * 1000
      every(Math.min(5_000, staleAfterMs / 2), 'stale sweep', async () => {
        const marked = await markStale(database.db, new Date(Date.now() - staleAfterMs))
        for (const d of marked) {
          live.droneStale(d.fleetId, d.id)
          fastify.changeFeed.drone(d.fleetId, d.id)
        }
      })

      every(
        Math.min(5_000, (config.DELIVERY_LOST_AFTER_S * 1000) / 4),
        'reconciliation',
        async () => {
          const done = await lifecycle.reconcile({
            lostAfterS: config.DELIVERY_LOST_AFTER_S,
            // As long as a drone has to accept an assignment: to say it works on a delivery.
            abandonAfterS: config.ACCEPT_TIMEOUT_S,
            listeningSince: mqtt.listeningSince,
          })
          if (done.length > 0)
            log.info({ deliveries: done }, 'reconciled deliveries without a drone')
        },
      )
    }
    const stop = async () => {
      timers.forEach(clearInterval)
      timers = []
      await Promise.all(rounds)
    }
    fastify.leadership.lead('housekeeping', { start, stop })

    fastify.addHook('onClose', stop)
  },
  {
    name: 'housekeeping',
    dependencies: ['database', 'ingest', 'deliveries', 'mqtt', 'live', 'leadership', 'change-feed'],
  },
)
