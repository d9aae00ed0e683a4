import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { FleetViewSchema, IdSchema } from '@skyline/schemas'
import { scopeOf } from '../../auth/principal.ts'
import { deliveryView, droneView, stationView } from '../../views.ts'

const fleet: FastifyPluginAsyncZod = async (fastify) => {
  fastify.get('/fleet', {
    schema: {
      summary:
        "Every drone and station of the reader's fleets, and the unfinished deliveries: the map's first paint",
      querystring: z.object({ fleet: IdSchema.optional() }),
      response: { 200: FleetViewSchema },
    },
    handler: async (req) => {
      const now = new Date()
      const fleets = scopeOf(req.principal, req.query.fleet)
      const [drones, stations, unfinished] = await Promise.all([
        fastify.fleet.listDrones(fleets),
        fastify.fleet.listStations(fleets),
        fastify.deliveries.unfinished(fleets),
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
