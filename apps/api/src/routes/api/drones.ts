import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { DroneViewSchema, ErrorSchema, IdSchema, TrackPointSchema } from '@skyline/schemas'
import { scopeOf } from '../../auth/principal.ts'
import { ApiError, notFound } from '../../errors.ts'
import { trackAsGpx } from './track-formats.ts'
import { DateTimeQuery } from './query.ts'
import { droneView, trackPointView } from '../../views.ts'

const FleetQuery = z.object({
  fleet: IdSchema.optional().describe('fleet id; needed only when two fleets use the same id'),
})

/** Longest track one request may ask for. */
const MAX_TRACK_RANGE_MS = 7 * 86_400_000

/**
 * A track's read deadline (other reads have REST_READ_TIMEOUT_MS), ms: 200,000 points
 * as JSON took 2.2 to 2.6 s on Postgres and 5 to 8 s on PGlite, on a loaded 2-core
 * machine (issue #14), an answer too slow for the default but not a database outage.
 */
export const TRACK_READ_TIMEOUT_MS = 30_000

const drones: FastifyPluginAsyncZod = async (fastify) => {
  const staleAfterS = fastify.config.STALE_AFTER_S

  fastify.get('/drones', {
    schema: {
      summary: 'Every drone with its latest state',
      querystring: FleetQuery,
      response: { 200: z.object({ drones: z.array(DroneViewSchema) }) },
    },
    handler: async (req) => {
      const now = new Date()
      const rows = await fastify.fleet.listDrones(scopeOf(req.principal, req.query.fleet))
      return { drones: rows.map((r) => droneView(r, now, staleAfterS)) }
    },
  })

  fastify.get('/drones/:id', {
    schema: {
      summary: 'One drone',
      params: z.object({ id: IdSchema }),
      querystring: FleetQuery,
      response: { 200: DroneViewSchema, 404: ErrorSchema, 409: ErrorSchema },
    },
    handler: async (req) => {
      const row = await fastify.fleet.getDrone(
        req.params.id,
        scopeOf(req.principal, req.query.fleet),
      )
      if (row === undefined) throw notFound('drone', req.params.id)
      return droneView(row, new Date(), staleAfterS)
    },
  })

  fastify.get('/drones/:id/track', {
    handlerTimeout: TRACK_READ_TIMEOUT_MS,
    schema: {
      summary: "A drone's flown track, as JSON, GeoJSON or GPX",
      description:
        'Positions between `from` and `to` (ISO 8601; default: the 24 hours up to its latest position), oldest first, at most 200,000 points.',
      params: z.object({ id: IdSchema }),
      querystring: FleetQuery.extend({
        from: DateTimeQuery.optional(),
        to: DateTimeQuery.optional(),
        format: z.enum(['json', 'geojson', 'gpx']).default('json'),
      }),
      response: {
        200: z.union([
          z.object({ droneId: z.string(), fleetId: z.string(), points: z.array(TrackPointSchema) }),
          z.string(),
          z.record(z.string(), z.unknown()),
        ]),
        400: ErrorSchema,
        404: ErrorSchema,
        409: ErrorSchema,
      },
    },
    handler: async (req, reply) => {
      const drone = await fastify.fleet.getDrone(
        req.params.id,
        scopeOf(req.principal, req.query.fleet),
      )
      if (drone === undefined) throw notFound('drone', req.params.id)
      const to = req.query.to ?? drone.positionAt ?? new Date()
      const from = req.query.from ?? new Date(to.getTime() - 86_400_000)
      if (from > to) throw new ApiError(400, 'bad_range', '`from` must not be after `to`')
      if (to.getTime() - from.getTime() > MAX_TRACK_RANGE_MS) {
        throw new ApiError(
          400,
          'bad_range',
          'a track covers at most 7 days: narrow `from` and `to`',
        )
      }
      const { fleet } = fastify
      switch (req.query.format) {
        case 'json': {
          const points = await fleet.track(drone.fleetId, drone.id, from, to)
          return { droneId: drone.id, fleetId: drone.fleetId, points: points.map(trackPointView) }
        }
        case 'geojson':
          return reply
            .type('application/geo+json')
            .send(await fleet.trackGeoJson(drone.fleetId, drone.id, from, to))
        case 'gpx': {
          const points = await fleet.track(drone.fleetId, drone.id, from, to)
          return reply.type('application/gpx+xml').send(trackAsGpx(drone.id, points))
        }
      }
    },
  })
}

export default drones
