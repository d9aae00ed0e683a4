import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import {
  ErrorSchema,
  GEOFENCE_KINDS,
  GeofenceCreateSchema,
  GeofencePatchSchema,
  GeofenceViewSchema,
  IdSchema,
} from '@skyline/schemas'
import { hasFleet, scopeOf } from '../../auth/principal.ts'
import { ApiError, notFound } from '../../errors.ts'
import { geofenceView } from '../../views.ts'

const Params = z.object({ id: IdSchema })

/** No-fly zones and areas (docs/architecture.md "No-fly zones and areas"). */
const routes: FastifyPluginAsyncZod = async (fastify) => {
  const { geofences } = fastify

  fastify.get('/geofences', {
    schema: {
      summary: "No-fly zones and areas of the reader's fleets",
      querystring: z.object({
        fleet: IdSchema.optional(),
        kind: z.enum(GEOFENCE_KINDS).optional(),
      }),
      response: { 200: z.object({ geofences: z.array(GeofenceViewSchema) }), 400: ErrorSchema },
    },
    handler: async (req) => {
      const { fleet, kind } = req.query
      const rows = await geofences.repository.list(scopeOf(req.principal, fleet), { kind })
      return { geofences: rows.map(geofenceView) }
    },
  })

  fastify.get('/geofences/:id', {
    schema: {
      summary: 'One no-fly zone or area',
      params: Params,
      response: { 200: GeofenceViewSchema, 400: ErrorSchema, 404: ErrorSchema },
    },
    handler: async (req) => {
      const row = await geofences.repository.get(req.params.id, req.principal.fleets)
      if (row === undefined) throw notFound('geofence', req.params.id)
      return geofenceView(row)
    },
  })

  fastify.post('/geofences', {
    config: { access: 'operate' },
    schema: {
      summary: "Create a no-fly zone or an area in one of the token's fleets (service or admin)",
      body: GeofenceCreateSchema,
      response: { 201: GeofenceViewSchema, 400: ErrorSchema },
    },
    handler: async (req, reply) => {
      const { fleet } = req.body
      // 403 whether or not the fleet exists: the answer says nothing of other fleets.
      if (!hasFleet(req.principal, fleet))
        throw new ApiError(403, 'forbidden', `this token does not operate fleet ${fleet}`)
      return reply.code(201).send(geofenceView(await geofences.create(req.body)))
    },
  })

  fastify.patch('/geofences/:id', {
    config: { access: 'operate' },
    schema: {
      summary: "Change a zone of the token's fleets: the fields given (service or admin)",
      params: Params,
      body: GeofencePatchSchema,
      response: { 200: GeofenceViewSchema, 400: ErrorSchema, 404: ErrorSchema },
    },
    handler: async (req) =>
      geofenceView(await geofences.update(req.params.id, req.body, req.principal.fleets)),
  })

  fastify.delete('/geofences/:id', {
    config: { access: 'operate' },
    schema: {
      summary: "Delete a zone of the token's fleets (service or admin)",
      params: Params,
      response: { 204: z.null().describe('deleted'), 400: ErrorSchema, 404: ErrorSchema },
    },
    handler: async (req, reply) => {
      await geofences.remove(req.params.id, req.principal.fleets)
      return reply.code(204).send(null)
    },
  })
}

export default routes
