import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'

const stats: FastifyPluginAsyncZod = async (fastify) => {
  fastify.get('/stats', {
    schema: {
      summary: 'Counts, ingest and rejected messages',
      response: {
        200: z.object({
          drones: z.number().int(),
          dronesOnline: z.number().int(),
          stations: z.number().int(),
          deliveries: z.number().int(),
          ingest: z.object({
            received: z.number().int().describe('messages received since the api started'),
            rejected: z.number().int().describe('messages rejected since the api started'),
            rejectedStored: z.number().int().describe('rows in the dead-letter table'),
            buffered: z.number().int().describe('messages waiting to be written'),
          }),
          eta: z.object({
            meanAbsErrorS: z
              .number()
              .nullable()
              .describe('mean absolute error of the last ETA against the actual arrival, s'),
            samples: z.number().int().describe('arrived deliveries that had an ETA'),
          }),
        }),
      },
    },
    handler: async () => {
      const counts = await fastify.fleet.counts()
      const { ingest, batcher } = fastify.ingest
      return {
        drones: counts.drones,
        dronesOnline: counts.dronesOnline,
        stations: counts.stations,
        deliveries: counts.deliveries,
        ingest: {
          received: ingest.received,
          rejected: ingest.rejected,
          rejectedStored: counts.rejected,
          buffered: batcher.buffered,
        },
        eta: { meanAbsErrorS: counts.etaMeanAbsErrorS, samples: counts.etaSamples },
      }
    },
  })
}

export default stats
