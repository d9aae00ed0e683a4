import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { FleetViewSchema, IdSchema } from '@skyline/schemas'
import { deliveryView, droneView, stationView } from '../../views.ts'

const fleet: FastifyPluginAsyncZod = async (fastify) => {
  fastify.get('/fleet', {
    schema: {
      summary: "Every drone and station, and the unfinished deliveries: the map's first paint",
      querystring: z.object({ fleet: IdSchema.optional() }),
      response: { 200: FleetViewSchema },
    },
    handler: async (req) => {
      const now = new Date()
      const [drones, stations, unfinished] = await Promise.all([
        fastify.fleet.listDrones(req.query.fleet),
        fastify.fleet.listStations(req.query.fleet),
        fastify.deliveries.unfinished(req.query.fleet),
      ])
      return {
        at: now.toISOString(),
        drones: drones.map((d) => droneView(d, now, fastify.config.STALE_AFTER_S)),
        stations: stations.map(stationView),
        deliveries: unfinished.map(deliveryView),
      }
    },
  })
}

export default fleet
