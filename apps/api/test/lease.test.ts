import { afterEach, describe, expect, it, vi } from 'vitest'
import { sql } from 'drizzle-orm'
import { LeaderLease, LeaseLostError } from '../src/cluster/lease.ts'
import type { Database } from '../src/db/client.ts'
import { deliveries, stations } from '../src/db/schema.ts'
import { DeliveryChanges } from '../src/delivery/changes.ts'
import { DeliveryLifecycle } from '../src/delivery/lifecycle.ts'
import { DATABASES, WAIT, stationRow } from './helpers.ts'

// Issue 17, item 2: one api instance at a time leads, chosen through the database.

const TTL_MS = 400

describe.each(DATABASES)('the leader lease, %s', (_name, open) => {
  let database: Database | undefined
  const leases: LeaderLease[] = []
  afterEach(async () => {
    await Promise.all(leases.splice(0).map((l) => l.stop()))
    await database?.close()
    database = undefined
  })

  const lease = (holder: string) => {
    const events: string[] = []
    const l = new LeaderLease(
      database!.db,
      holder,
      { ttlMs: TTL_MS },
      {
        gained: (epoch) => events.push(`gained ${epoch}`),
        lost: (reason) => events.push(`lost: ${reason}`),
      },
    )
    leases.push(l)
    return { lease: l, events }
  }
  const write = (l: LeaderLease) =>
    database!.db.transaction(async (tx) => {
      await l.fence(tx)
      await tx.execute(sql`SELECT 1`)
    })

  it('is held by one instance; another takes it over once it lapses, and the old one is fenced', async () => {
    database = await open()
    const a = lease('a')
    const b = lease('b')
    await a.lease.renew()
    await b.lease.renew()
    expect(a.events).toEqual(['gained 1'])
    expect(b.events).toEqual([])
    expect(a.lease.isLeader).toBe(true)
    await expect(write(a.lease)).resolves.toBeUndefined()
    await expect(write(b.lease)).rejects.toThrow(LeaseLostError)

    // a stops renewing (a paused process): b takes over once the lease has lapsed.
    await vi.waitFor(async () => {
      await b.lease.renew()
      expect(b.events).toEqual(['gained 2'])
    }, WAIT)
    // a has not noticed yet, and its writes are refused all the same.
    await expect(write(a.lease)).rejects.toThrow(/epoch 1/)
    await a.lease.renew()
    expect(a.events).toEqual(['gained 1', 'lost: another instance holds the lease'])
    expect(a.lease.isLeader).toBe(false)
  })

  it('stops leading on its own when it cannot renew in time', async () => {
    database = await open()
    const a = lease('a')
    await a.lease.renew()
    const b = lease('b')
    await database.close() // the database is gone for both
    database = undefined
    a.lease.start()
    await vi.waitFor(
      () => expect(a.events).toEqual(['gained 1', 'lost: the lease could not be renewed in time']),
      WAIT,
    )
    expect(b.events).toEqual([])
  })

  it('hands the lease over at once when its holder stops', async () => {
    database = await open()
    const a = lease('a')
    const b = lease('b')
    a.lease.start()
    await vi.waitFor(() => expect(a.lease.isLeader).toBe(true), WAIT)
    b.lease.start()
    await a.lease.stop()
    expect(a.events).toEqual(['gained 1', 'lost: stopping'])
    await vi.waitFor(() => expect(b.events).toEqual(['gained 2']), {
      timeout: TTL_MS,
      interval: 10,
    })
  })

  it("refuses the dispatcher's assignment of an instance whose lease was taken over", async () => {
    database = await open()
    const now = new Date()
    await database.db
      .insert(stations)
      .values([stationRow('f1', 's1', 48.85, now), stationRow('f1', 's2', 48.86, now)])
    const a = lease('a')
    await a.lease.renew()
    const sent: unknown[] = []
    const lifecycle = new DeliveryLifecycle(
      database.db,
      new DeliveryChanges(() => {}),
      async (_topic, command) => void sent.push(command),
      { warn: () => {} },
      undefined,
      (tx) => a.lease.fence(tx),
    )
    const d = await lifecycle.request({
      fleetId: 'f1',
      pickupStationId: 's1',
      dropoffStationId: 's2',
      payloadKg: 1,
    })
    const b = lease('b')
    await vi.waitFor(async () => {
      await b.lease.renew()
      expect(b.lease.isLeader).toBe(true)
    }, WAIT)
    const stop = (id: string, lat: number) => ({ id, lat, lon: 2.35 })
    await expect(
      lifecycle.assign(d, 'drone-1', stop('s1', 48.85), stop('s2', 48.86)),
    ).rejects.toThrow(LeaseLostError)
    expect(sent).toEqual([])
    const [row] = await database.db.select().from(deliveries)
    expect(row).toMatchObject({ status: 'requested', droneId: null })
  })
})
