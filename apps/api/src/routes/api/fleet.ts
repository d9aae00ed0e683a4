import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { IdSchema } from '@skyline/schemas'
import { DroneViewSchema, StationViewSchema, droneView, stationView } from './views.ts'

const fleet: FastifyPluginAsyncZod = async (fastify) => {
  fastify.get('/fleet', {
    schema: {
      summary: "Every drone and station: the map's first paint",
      querystring: z.object({ fleet: IdSchema.optional() }),
      response: {
        200: z.object({
          at: z.iso.datetime(),
          drones: z.array(DroneViewSchema),
          stations: z.array(StationViewSchema),
        }),
      },
    },
    handler: async (req) => {
      const now = new Date()
      const [drones, stations] = await Promise.all([
        fastify.fleet.listDrones(req.query.fleet),
        fastify.fleet.listStations(req.query.fleet),
      ])
      return {
        at: now.toISOString(),
        drones: drones.map((d) => droneView(d, now, fastify.config.STALE_AFTER_S)),
        stations: stations.map(stationView),
      }
    },
  })
}

export default fleet
