import { randomUUID } from 'node:crypto'
import { asc, eq } from 'drizzle-orm'
import { afterEach, describe, expect, it } from 'vitest'
import { DELIVERY_STATUSES } from '@skyline/schemas'
import type { DeliveryStatus, DroneCommand, DroneEvent } from '@skyline/schemas'
import type { Database } from '../src/db/client.ts'
import { deliveries, deliveryEvents, drones, stations } from '../src/db/schema.ts'
import { DeliveryChanges } from '../src/delivery/changes.ts'
import { TRANSITIONS, allowed } from '../src/delivery/transitions.ts'
import { DATABASES, lifecycleOn, stationRow } from './helpers.ts'

describe('the table of transitions', () => {
  it('lets nothing leave completed or cancelled, and failed only forward or cancelled', () => {
    expect(TRANSITIONS.completed).toEqual([])
    expect(TRANSITIONS.cancelled).toEqual([])
    expect(TRANSITIONS.failed).not.toContain('requested')
    expect(TRANSITIONS.failed).not.toContain('assigned')
    // Every status is in the table, and every target is a status.
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...DELIVERY_STATUSES].sort())
    for (const to of Object.values(TRANSITIONS).flat()) expect(DELIVERY_STATUSES).toContain(to)
  })

  it('gives a delivery back only before its payload is on board', () => {
    const back = DELIVERY_STATUSES.filter((s) => allowed(s, 'requested'))
    expect(back).toEqual(['assigned', 'to_pickup'])
  })
})

const T0 = Date.parse('2026-12-03T10:00:00Z')

describe.each(DATABASES)('the delivery lifecycle on %s', (_name, open) => {
  let database: Database | undefined
  afterEach(async () => {
    await database?.close()
    database = undefined
  })

  /** A fleet with two stations and drone d1, a clock at `clock.t`, and what was sent and told. */
  async function setUp() {
    database = await open()
    const { db } = database
    const clock = { t: T0 }
    const sent: { topic: string; command: DroneCommand }[] = []
    const told: [string, DeliveryStatus | undefined][] = []
    const changes = new DeliveryChanges((err) => {
      throw err
    })
    changes.subscribe((id, status) => told.push([id, status]))
    const lifecycle = lifecycleOn(db, {
      changes,
      now: () => new Date(clock.t),
      send: async (topic, command) => {
        sent.push({ topic, command })
      },
    })
    const at = new Date(T0)
    await db
      .insert(stations)
      .values([stationRow('f1', 's1', 48.85, at), stationRow('f1', 's2', 48.86, at)])
    return { db, clock, sent, told, lifecycle }
  }

  type Setup = Awaited<ReturnType<typeof setUp>>

  /** Drone d1 as its last report left it, heard `agoS` before the clock. */
  const drone = (
    s: Setup,
    o: { agoS: number; state: string; deliveryId?: string | null; online?: boolean },
  ) =>
    s.db
      .insert(drones)
      .values({
        fleetId: 'f1',
        id: 'd1',
        online: o.online ?? true,
        state: o.state,
        deliveryId: o.deliveryId ?? null,
        lastSeenAt: new Date(s.clock.t - o.agoS * 1000),
      })
      .onConflictDoUpdate({
        target: [drones.fleetId, drones.id],
        set: {
          online: o.online ?? true,
          state: o.state,
          deliveryId: o.deliveryId ?? null,
          lastSeenAt: new Date(s.clock.t - o.agoS * 1000),
        },
      })

  /** A delivery of d1 in `status`, its last transition `agoS` before the clock. */
  const delivery = async (s: Setup, status: DeliveryStatus, agoS: number) => {
    const id = randomUUID()
    const when = new Date(s.clock.t - agoS * 1000)
    await s.db.insert(deliveries).values({
      id,
      fleetId: 'f1',
      status,
      source: 'api',
      pickupStationId: 's1',
      dropoffStationId: 's2',
      payloadKg: 1,
      droneId: 'd1',
      requestedAt: when,
      assignedAt: when,
      updatedAt: when,
    })
    return id
  }

  const row = async (s: Setup, id: string) => {
    const [d] = await s.db.select().from(deliveries).where(eq(deliveries.id, id))
    const events = await s.db
      .select()
      .from(deliveryEvents)
      .where(eq(deliveryEvents.deliveryId, id))
      .orderBy(asc(deliveryEvents.id))
    return { ...d!, events: events.map((e) => [e.status, e.detail]) }
  }

  const listening = (s: Setup, sinceS: number) => ({
    lostAfterS: 120,
    abandonAfterS: 30,
    listeningSince: new Date(s.clock.t - sinceS * 1000),
  })

  it('gives back a delivery whose drone went silent before the pick-up, and tells the drone to cancel', async () => {
    const s = await setUp()
    const id = await delivery(s, 'to_pickup', 200)
    await drone(s, { agoS: 121, state: 'offline', online: false })

    const done = await s.lifecycle.reconcile(listening(s, 600))

    expect(done).toEqual([{ id, droneId: 'd1', reason: 'drone_lost', status: 'requested' }])
    const d = await row(s, id)
    expect(d.status).toBe('requested')
    expect(d.droneId).toBeNull()
    expect(d.declinedBy).toEqual([]) // lost is not declined: it may be asked again
    expect(d.events).toEqual([['requested', 'drone d1: drone_lost']])
    expect(s.told).toEqual([[id, 'requested']])
    expect(
      s.sent.map((m) => [
        m.topic,
        m.command.type,
        'deliveryId' in m.command && m.command.deliveryId,
      ]),
    ).toEqual([['fleet/f1/drones/d1/commands', 'cancel', id]])
  })

  it('fails a delivery whose drone went silent with the payload on board, and carries on when it is back', async () => {
    const s = await setUp()
    const id = await delivery(s, 'en_route', 300)
    await drone(s, { agoS: 130, state: 'stale' })
    const [done] = await s.lifecycle.reconcile(listening(s, 600))
    expect(done).toMatchObject({ id, reason: 'drone_lost', status: 'failed' })
    expect(await row(s, id)).toMatchObject({
      status: 'failed',
      failureReason: 'drone_lost',
      droneId: 'd1', // kept: it is the drone that may come back with it
      events: [['failed', 'drone d1: drone_lost']],
    })
    expect(s.sent).toEqual([]) // nothing to cancel: only this drone has the parcel

    // Back, and over the drop-off: the delivery is its again.
    const arrived: DroneEvent = {
      v: 1,
      ts: s.clock.t + 1000,
      id: randomUUID(),
      type: 'delivery.arrived',
      deliveryId: id,
    }
    await s.db.transaction((tx) =>
      s.lifecycle.droneEvent(tx, 'f1', 'd1', arrived, new Date(s.clock.t)),
    )
    const d = await row(s, id)
    expect(d).toMatchObject({ status: 'arrived', failureReason: null, failedAt: null })
    expect(d.events.at(-1)).toEqual(['arrived', 'drone d1 is back: delivery.arrived'])
  })

  it("does not let another drone's event resume a lost delivery, nor a drone's failure resume it", async () => {
    const s = await setUp()
    const id = await delivery(s, 'picked_up', 300)
    await drone(s, { agoS: 200, state: 'offline', online: false })
    await s.lifecycle.reconcile(listening(s, 600))
    const event = (type: DroneEvent['type']): DroneEvent => ({
      v: 1,
      ts: s.clock.t,
      id: randomUUID(),
      type,
      deliveryId: id,
    })
    await s.db.transaction(async (tx) => {
      await s.lifecycle.droneEvent(tx, 'f1', 'd2', event('delivery.completed'), new Date(s.clock.t))
      await s.lifecycle.droneEvent(tx, 'f1', 'd1', event('delivery.failed'), new Date(s.clock.t))
    })
    expect(await row(s, id)).toMatchObject({ status: 'failed', failureReason: 'drone_lost' })
  })

  it('judges no drone lost over a time the api was not listening', async () => {
    const s = await setUp()
    const id = await delivery(s, 'en_route', 600)
    await drone(s, { agoS: 500, state: 'en_route', deliveryId: id })
    // Back for 60 s only (a restart): 500 s of silence may be the api's own.
    expect(await s.lifecycle.reconcile(listening(s, 60))).toEqual([])
    expect(await s.lifecycle.reconcile({ ...listening(s, 0), listeningSince: undefined })).toEqual(
      [],
    )
    expect((await row(s, id)).status).toBe('en_route')
    // Listening for longer than the bound, and still nothing from it: lost.
    expect(await s.lifecycle.reconcile(listening(s, 121))).toMatchObject([
      { id, reason: 'drone_lost' },
    ])
  })

  it('finds a delivery abandoned by a drone that reports no mission (either side restarted)', async () => {
    const s = await setUp()
    const fresh = await delivery(s, 'to_pickup', 10)
    const old = await delivery(s, 'to_pickup', 40)
    const loaded = await delivery(s, 'en_route', 40)
    // Idle at a station, heard a second ago: it is flying none of them, whatever its last
    // point said.
    await drone(s, { agoS: 1, state: 'idle', deliveryId: loaded })

    const done = await s.lifecycle.reconcile(listening(s, 5))

    // The one moved 10 s ago may still be on its way to being reported: left alone.
    expect(done.map((d) => [d.id, d.reason, d.status]).sort()).toEqual(
      [
        [old, 'abandoned', 'requested'],
        [loaded, 'abandoned', 'failed'],
      ].sort(),
    )
    expect((await row(s, fresh)).status).toBe('to_pickup')
    expect(await row(s, loaded)).toMatchObject({ failureReason: 'abandoned' })
  })

  it('leaves alone a delivery its drone reports it is flying', async () => {
    const s = await setUp()
    const id = await delivery(s, 'en_route', 100)
    await drone(s, { agoS: 1, state: 'en_route', deliveryId: id })
    expect(await s.lifecycle.reconcile(listening(s, 600))).toEqual([])
    // Flying another one instead: abandoned.
    await drone(s, { agoS: 1, state: 'en_route', deliveryId: 'another' })
    expect(await s.lifecycle.reconcile(listening(s, 600))).toMatchObject([
      { id, reason: 'abandoned' },
    ])
  })

  it('does not take a point naming a delivery already taken from the drone for another mission', async () => {
    // A time-scaled simulator restarted: its clock starts over behind the last run's, so
    // its points are older than the drone's position and move nothing but lastSeenAt; the
    // drone's deliveryId stays the one its last run was flying (since given back), while
    // its statuses say what it does now: flying the delivery given to it since.
    const s = await setUp()
    const old = await delivery(s, 'to_pickup', 300)
    await s.db
      .update(deliveries)
      .set({ status: 'requested', droneId: null })
      .where(eq(deliveries.id, old))
    const finishedOld = await delivery(s, 'completed', 300)
    const current = await delivery(s, 'to_pickup', 100)
    await drone(s, { agoS: 1, state: 'to_pickup', deliveryId: old })
    expect(await s.lifecycle.reconcile(listening(s, 600))).toEqual([])
    await drone(s, { agoS: 1, state: 'to_pickup', deliveryId: finishedOld })
    expect(await s.lifecycle.reconcile(listening(s, 600))).toEqual([])
    expect((await row(s, current)).status).toBe('to_pickup')
  })

  it('keeps no ETA memory of a delivery cancelled in flight, however late its drone hears it', async () => {
    const s = await setUp()
    const id = await delivery(s, 'en_route', 10)
    const point = (ts: number) => ({
      deliveryId: id,
      fleetId: 'f1',
      ts,
      lat: 48.855,
      lon: 2.35,
      altM: 50,
      speedMps: 10,
      state: 'en_route',
    })
    await s.db.transaction((tx) => s.lifecycle.positions(tx, [point(s.clock.t)]))
    expect(s.lifecycle.eta.horizons.size).toBe(1)
    await s.lifecycle.cancel(id)
    expect(s.lifecycle.eta.horizons.size).toBe(0)
    const { etaAt } = await row(s, id)
    // Its drone flies on until the cancel reaches it, and then answers "cancelled",
    // which moves nothing: the memory taken meanwhile would stay for good.
    await s.db.transaction((tx) => s.lifecycle.positions(tx, [point(s.clock.t + 1000)]))
    expect(s.lifecycle.eta.horizons.size).toBe(0)
    expect((await row(s, id)).etaAt).toEqual(etaAt) // a cancelled delivery has no ETA to move
  })

  it('lets an operator cancel a delivery failed as lost, and tells its drone; not one that failed otherwise', async () => {
    const s = await setUp()
    const lost = await delivery(s, 'en_route', 300)
    await drone(s, { agoS: 200, state: 'offline', online: false })
    await s.lifecycle.reconcile(listening(s, 600))
    expect((await row(s, lost)).status).toBe('failed')

    await expect(s.lifecycle.cancel(lost)).resolves.toMatchObject({ status: 'cancelled' })
    expect(
      s.sent.map((m) => [m.command.type, 'deliveryId' in m.command && m.command.deliveryId]),
    ).toEqual([['cancel', lost]])
    const refused = await delivery(s, 'failed', 10)
    await s.db
      .update(deliveries)
      .set({ failureReason: 'battery' })
      .where(eq(deliveries.id, refused))
    await expect(s.lifecycle.cancel(refused)).rejects.toMatchObject({ statusCode: 409 })
  })

  it('gives a drone docked over the drop-off as long as a silent one before it is abandoned', async () => {
    const s = await setUp()
    const id = await delivery(s, 'arrived', 60)
    await drone(s, { agoS: 1, state: 'idle', deliveryId: null })
    // Past ACCEPT_TIMEOUT_S (30 s here), not past DELIVERY_LOST_AFTER_S (120 s).
    expect(await s.lifecycle.reconcile(listening(s, 600))).toEqual([])
    s.clock.t += 61_000
    await drone(s, { agoS: 1, state: 'idle', deliveryId: null })
    expect(await s.lifecycle.reconcile(listening(s, 600))).toMatchObject([
      { id, reason: 'abandoned', status: 'failed' },
    ])
  })

  it('keeps the ETA history of an arrival whose transaction rolled back, for the retry', async () => {
    const s = await setUp()
    const id = await delivery(s, 'en_route', 10)
    const point = {
      deliveryId: id,
      fleetId: 'f1',
      ts: s.clock.t,
      lat: 48.855,
      lon: 2.35,
      altM: 50,
      speedMps: 10,
      state: 'en_route',
    }
    await s.db.transaction((tx) => s.lifecycle.positions(tx, [point]))
    expect(s.lifecycle.eta.horizons.size).toBe(1)
    const completed: DroneEvent = {
      v: 1,
      ts: s.clock.t + 1000,
      id: randomUUID(),
      type: 'delivery.completed',
      deliveryId: id,
    }
    await expect(
      s.db.transaction(async (tx) => {
        await s.lifecycle.droneEvent(tx, 'f1', 'd1', completed, new Date(s.clock.t))
        throw new Error('the batch fails after the move')
      }),
    ).rejects.toThrow('the batch fails')
    expect((await row(s, id)).status).toBe('en_route')
    expect(s.lifecycle.eta.horizons.size).toBe(1) // still there for the batch written again
    await s.db.transaction((tx) =>
      s.lifecycle.droneEvent(tx, 'f1', 'd1', completed, new Date(s.clock.t)),
    )
    s.lifecycle.changes.emit(id) // as the ingest does after its commit
    expect(s.lifecycle.eta.horizons.size).toBe(0)
  })

  it('judges each drone again when it moves its delivery: one heard since the round began is not lost', async () => {
    const s = await setUp()
    const ids = [await delivery(s, 'to_pickup', 300), await delivery(s, 'to_pickup', 300)]
    await s.db.update(deliveries).set({ droneId: 'd2' }).where(eq(deliveries.id, ids[1]!))
    const silent = new Date(s.clock.t - 200_000)
    await s.db.insert(drones).values(
      ['d1', 'd2'].map((id) => ({
        fleetId: 'f1',
        id,
        online: true,
        state: 'to_pickup',
        lastSeenAt: silent,
      })),
    )
    // While the round tells the first drone to cancel, the other one is heard again.
    const cancelled: string[] = []
    const lifecycle = lifecycleOn(s.db, {
      now: () => new Date(s.clock.t),
      send: async (_topic, command) => {
        if (command.type !== 'cancel') return
        cancelled.push(command.deliveryId!)
        await s.db
          .update(drones)
          .set({ lastSeenAt: new Date(s.clock.t) })
          .where(eq(drones.id, command.deliveryId === ids[0] ? 'd2' : 'd1'))
      },
    })

    const done = await lifecycle.reconcile(listening(s, 600))

    expect(done).toHaveLength(1)
    expect(cancelled).toEqual([done[0]!.id])
    const other = ids.find((id) => id !== done[0]!.id)!
    expect((await row(s, other)).status).toBe('to_pickup')
  })

  it('refuses a move the table does not allow, and moves nothing finished', async () => {
    const s = await setUp()
    const id = await delivery(s, 'completed', 10)
    await expect(s.lifecycle.cancel(id)).rejects.toMatchObject({ statusCode: 409 })
    expect((await row(s, id)).events).toEqual([])
    expect(s.told).toEqual([])
  })

  it('tells every change it commits, with the new status', async () => {
    const s = await setUp()
    const created = await s.lifecycle.request({
      fleetId: 'f1',
      pickupStationId: 's1',
      dropoffStationId: 's2',
      payloadKg: 1,
    })
    await s.lifecycle.cancel(created.id)
    expect(s.told).toEqual([
      [created.id, 'requested'],
      [created.id, 'cancelled'],
    ])
    expect((await row(s, created.id)).events).toEqual([
      ['requested', 'operator'],
      ['cancelled', 'operator'],
    ])
  })
})
