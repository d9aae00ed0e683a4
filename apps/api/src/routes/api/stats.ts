import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { ETA_HORIZONS } from '../../delivery/eta-horizons.ts'

const stats: FastifyPluginAsyncZod = async (fastify) => {
  fastify.get('/stats', {
    schema: {
      summary: "The reader's fleets' counts and ETA error; the api's ingest",
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
            horizons: z
              .array(
                z.object({
                  horizon: z.enum(ETA_HORIZONS),
                  deliveries: z
                    .number()
                    .int()
                    .describe('arrived deliveries that had an ETA at this horizon'),
                  meanAbsErrorS: z
                    .number()
                    .nullable()
                    .describe('mean absolute error of the ETA against the actual arrival, s'),
                  p90AbsErrorS: z
                    .number()
                    .nullable()
                    .describe('90th percentile (interpolated) of the absolute error, s'),
                }),
              )
              .describe(
                'the ETA a customer saw at departure, at half the distance, and 5 and 1 minutes before the arrival',
              ),
          }),
        }),
      },
    },
    // Drones, stations, deliveries and ETAs count the reader's fleets; `ingest` is the
    // api's own (every fleet's messages, counts only: no id, no position).
    handler: async (req) => {
      const { fleets } = req.principal
      const [counts, horizons] = await Promise.all([
        fastify.fleet.counts(fleets),
        fastify.fleet.etaHorizons(fleets),
      ])
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
        eta: { meanAbsErrorS: counts.etaMeanAbsErrorS, samples: counts.etaSamples, horizons },
      }
    },
  })
}

export default stats
