import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'

const ReadySchema = z.object({
  ready: z.boolean(),
  /** The leader runs the ingest session and the dispatcher; a follower serves REST and live. */
  role: z.enum(['leader', 'follower']),
  instance: z.string(),
  checks: z.object({
    database: z.boolean(),
    broker: z.boolean(),
    /** The broker acknowledged the ingest's subscriptions (or kept them in its session). */
    subscribed: z.boolean(),
    ingest: z.boolean(),
  }),
})

const health: FastifyPluginAsyncZod = async (fastify) => {
  // Probes (a load balancer, Kubernetes) carry no token, and these say nothing of a fleet.
  fastify.get('/health', {
    config: { access: 'public' },
    schema: {
      summary: 'Liveness: the process answers',
      response: { 200: z.object({ status: z.literal('ok') }) },
    },
    handler: async () => ({ status: 'ok' as const }),
  })

  fastify.get('/ready', {
    config: { access: 'public' },
    schema: {
      summary:
        'Readiness: database and broker reachable; on the leader, ingest subscribed and writing',
      response: { 200: ReadySchema, 503: ReadySchema },
    },
    handler: async (_req, reply) => {
      // An unreachable host would otherwise hold this answer for the driver's 30 s.
      const database = await Promise.race([
        fastify.database.ping().then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((resolve) => setTimeout(resolve, 1_000, false).unref()),
      ])
      const { role } = fastify.leadership
      const checks = {
        database,
        broker: fastify.mqtt.connected,
        subscribed: fastify.mqtt.subscribed,
        ingest: fastify.ingest.batcher.isHealthy,
      }
      // A follower is ready to serve without the ingest: that is the leader's.
      const ready =
        checks.database &&
        checks.broker &&
        (role === 'follower' || (checks.subscribed && checks.ingest))
      return reply
        .code(ready ? 200 : 503)
        .send({ ready, role, instance: fastify.instanceId, checks })
    },
  })
}

export default health
