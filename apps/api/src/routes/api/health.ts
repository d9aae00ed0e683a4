import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'

const ReadySchema = z.object({
  ready: z.boolean(),
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
      summary: 'Readiness: database and broker reachable, ingest subscribed and writing',
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
      const checks = {
        database,
        broker: fastify.mqtt.client.connected,
        subscribed: fastify.mqtt.subscribed,
        ingest: fastify.ingest.batcher.isHealthy,
      }
      const ready = checks.database && checks.broker && checks.subscribed && checks.ingest
      return reply.code(ready ? 200 : 503).send({ ready, checks })
    },
  })
}

export default health
