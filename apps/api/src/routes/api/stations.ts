import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { ErrorSchema, IdSchema, StationViewSchema } from '@skyline/schemas'
import { scopeOf } from '../../auth/principal.ts'
import { notFound } from '../../errors.ts'
import { stationView } from '../../views.ts'

const FleetQuery = z.object({ fleet: IdSchema.optional() })

const stations: FastifyPluginAsyncZod = async (fastify) => {
  fastify.get('/stations', {
    schema: {
      summary: 'Every landing station with its latest status',
      querystring: FleetQuery,
      response: { 200: z.object({ stations: z.array(StationViewSchema) }) },
    },
    handler: async (req) => ({
      stations: (await fastify.fleet.listStations(scopeOf(req.principal, req.query.fleet))).map(
        stationView,
      ),
    }),
  })

  fastify.get('/stations/:id', {
    schema: {
      summary: 'One landing station',
      params: z.object({ id: IdSchema }),
      querystring: FleetQuery,
      response: { 200: StationViewSchema, 404: ErrorSchema, 409: ErrorSchema },
    },
    handler: async (req) => {
      const row = await fastify.fleet.getStation(
        req.params.id,
        scopeOf(req.principal, req.query.fleet),
      )
      if (row === undefined) throw notFound('station', req.params.id)
      return stationView(row)
    },
  })
}

export default stations
