import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import {
  DELIVERY_STATUSES,
  DeliveryDetailSchema,
  DeliveryViewSchema as DeliverySchema,
  ErrorSchema,
  IdSchema,
  buildTopic,
} from '@skyline/schemas'
import type { DeliveryView } from '@skyline/schemas'
import type { DeliveryEventRow, DeliveryRow } from '../../plugins/app/delivery-repository.ts'
import { ApiError } from '../../errors.ts'
import { publishCommand } from '../../plugins/external/ingest.ts'
import { CursorQuery, DateTimeQuery, encodeCursor } from './query.ts'

const isoOrNull = (d: Date | null) => d?.toISOString() ?? null

export const deliveryView = (d: DeliveryRow): DeliveryView => ({
  id: d.id,
  fleetId: d.fleetId,
  status: d.status,
  source: d.source,
  pickupStationId: d.pickupStationId,
  dropoffStationId: d.dropoffStationId,
  payloadKg: d.payloadKg,
  droneId: d.droneId,
  distanceM: d.distanceM,
  requestedAt: d.requestedAt.toISOString(),
  assignedAt: isoOrNull(d.assignedAt),
  pickedUpAt: isoOrNull(d.pickedUpAt),
  departedAt: isoOrNull(d.departedAt),
  arrivedAt: isoOrNull(d.arrivedAt),
  completedAt: isoOrNull(d.completedAt),
  failedAt: isoOrNull(d.failedAt),
  cancelledAt: isoOrNull(d.cancelledAt),
  failureReason: d.failureReason,
  etaAt: isoOrNull(d.etaAt),
  etaErrorS: d.etaErrorS,
})

const eventView = (e: DeliveryEventRow) => ({
  status: e.status,
  at: e.at.toISOString(),
  detail: e.detail,
})

const routes: FastifyPluginAsyncZod = async (fastify) => {
  fastify.get('/deliveries', {
    schema: {
      summary: 'Deliveries, newest first, a page at a time',
      querystring: z.object({
        fleet: IdSchema.optional(),
        status: z.enum(DELIVERY_STATUSES).optional(),
        droneId: IdSchema.optional(),
        stationId: IdSchema.optional().describe('pick-up or drop-off'),
        from: DateTimeQuery.optional().describe('requested at or after'),
        to: DateTimeQuery.optional().describe('requested at or before'),
        limit: z.coerce.number().int().min(1).max(200).default(50),
        cursor: CursorQuery.optional().describe('nextCursor of the previous page'),
      }),
      response: {
        200: z.object({ deliveries: z.array(DeliverySchema), nextCursor: z.string().nullable() }),
        400: ErrorSchema,
      },
    },
    handler: async (req) => {
      const q = req.query
      if (q.from !== undefined && q.to !== undefined && q.from > q.to)
        throw new ApiError(400, 'bad_range', '`from` must not be after `to`')
      const { cursor, ...filter } = q
      const page = await fastify.deliveries.list({ ...filter, fleetId: q.fleet, after: cursor })
      return {
        deliveries: page.deliveries.map(deliveryView),
        nextCursor: page.next !== null ? encodeCursor(page.next) : null,
      }
    },
  })

  fastify.get('/deliveries/:id', {
    schema: {
      summary: 'One delivery with its events and flown track',
      params: z.object({ id: IdSchema }),
      response: {
        200: DeliveryDetailSchema,
        400: ErrorSchema,
        404: ErrorSchema,
      },
    },
    handler: async (req) => {
      const { delivery, events } = await fastify.deliveries.get(req.params.id)
      const track = await fastify.deliveries.flownTrack(delivery)
      return {
        ...deliveryView(delivery),
        events: events.map(eventView),
        track: track.map((p) => ({ ...p, ts: p.ts.toISOString() })),
      }
    },
  })

  fastify.post('/deliveries', {
    preHandler: fastify.requireOperator,
    schema: {
      summary: 'Request a delivery (operator token)',
      headers: z.object({ authorization: z.string().optional() }),
      body: z.object({
        fleet: IdSchema,
        pickupStationId: IdSchema,
        dropoffStationId: IdSchema,
        // A gram at least: `payload_kg` is a 4-byte float, which refuses what would round
        // to zero (5e-324 was a 500, issue #14).
        payloadKg: z.number().min(0.001).max(50).describe('kilograms'),
      }),
      response: { 201: DeliverySchema, 400: ErrorSchema, 401: ErrorSchema, 403: ErrorSchema },
    },
    handler: async (req, reply) => {
      const { fleet, ...rest } = req.body
      const row = await fastify.deliveries.create({ fleetId: fleet, ...rest }, new Date())
      void fastify.dispatcher.tick()
      return reply.code(201).send(deliveryView(row))
    },
  })

  fastify.post('/deliveries/:id/cancel', {
    preHandler: fastify.requireOperator,
    schema: {
      summary: 'Cancel a delivery that is not finished (operator token)',
      params: z.object({ id: IdSchema }),
      response: {
        200: DeliverySchema,
        401: ErrorSchema,
        403: ErrorSchema,
        404: ErrorSchema,
        409: ErrorSchema,
      },
    },
    handler: async (req) => {
      const now = new Date()
      const { delivery, notify } = await fastify.deliveries.cancel(req.params.id, now)
      if (notify !== null) {
        const topic = buildTopic({
          kind: 'drone',
          fleetId: delivery.fleetId,
          droneId: notify,
          channel: 'commands',
        })
        const cancel = {
          v: 1,
          ts: now.getTime(),
          id: randomUUID(),
          type: 'cancel',
          deliveryId: delivery.id,
        }
        // The cancel is committed; telling the drone is best effort (it is queued if the broker is away).
        await publishCommand(fastify.ingest.client, topic, cancel).catch((err: unknown) =>
          req.log.warn({ err, topic }, 'cancel not yet delivered to the drone'),
        )
      }
      return deliveryView(delivery)
    },
  })
}

export default routes
