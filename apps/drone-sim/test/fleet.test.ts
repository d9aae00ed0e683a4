import { randomUUID } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { connectAsync } from 'mqtt'
import { signDeviceToken } from '@skyline/auth'
import type { DroneCommand } from '@skyline/schemas'
import { SECRET, Watcher, fleetOptions, startBroker, withFleet } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// The simulator against the real bundled broker on an ephemeral port, watched by a
// real MQTT client that checks every message against the contract.
let broker: TestBroker
let watcher: Watcher
const cleanup: (() => Promise<void>)[] = []

beforeEach(async () => {
  broker = await startBroker()
  watcher = await Watcher.start(broker.url, 'test')
})
afterEach(async () => {
  for (const stop of cleanup.splice(0).reverse()) await stop()
  expect(watcher.invalid()).toEqual([])
  await watcher.close()
  await broker.close()
})

describe('the simulator on the bundled broker', () => {
  it('flies an assigned delivery and reports every step in order', async () => {
    const fleet = await withFleet(fleetOptions(broker.url, { drones: 1, timeScale: 200 }), cleanup)
    const [pickup, dropoff] = fleet.stations.map((s) => s.stop)
    // The drone starts on station-1; picking up at station-2 makes it fly both legs.
    const api = await connectAsync(broker.url, {
      clientId: 'api',
      username: 'api',
      password: await signDeviceToken(SECRET, { role: 'service', sub: 'api' }),
    })
    cleanup.push(() => api.endAsync())
    const command: DroneCommand = {
      v: 1,
      ts: Date.now(),
      id: randomUUID(),
      type: 'delivery.assign',
      deliveryId: 'del-1',
      pickup: { stationId: dropoff!.stationId, lat: dropoff!.lat, lon: dropoff!.lon },
      dropoff: { stationId: pickup!.stationId, lat: pickup!.lat, lon: pickup!.lon },
    }
    await api.publishAsync('fleet/test/drones/drone-1/commands', JSON.stringify(command), {
      qos: 2,
    })
    await watcher.next(
      (m) => m.topic.endsWith('/events') && m.json.type === 'delivery.completed',
      20_000,
    )

    const events = watcher.on('drone-1', 'events').map((m) => m.json)
    expect(events.map((e) => e.type)).toEqual([
      'delivery.accepted',
      'delivery.picked_up',
      'delivery.departed',
      'delivery.arrived',
      'delivery.completed',
    ])
    expect(new Set(events.map((e) => e.id)).size).toBe(5)
    expect(events.every((e) => e.deliveryId === 'del-1')).toBe(true)
    const times = events.map((e) => e.ts as number)
    expect(times).toEqual([...times].sort((a, b) => a - b))
    // Telemetry carried the delivery while it flew, and the states it went through.
    const states = new Set(watcher.on('drone-1', 'telemetry').map((m) => m.json.state))
    expect(states).toContain('to_pickup')
    expect(states).toContain('en_route')
    // Events are QoS 1: a clean stop waits for the last acknowledgements.
    await fleet.stop()
    expect(fleet.stats.eventsAcked).toBe(5)
  })

  it('cancels a delivery in flight and returns to base when told', async () => {
    const fleet = await withFleet(fleetOptions(broker.url, { drones: 1, timeScale: 20 }), cleanup)
    const [home, other] = fleet.stations.map((s) => s.stop)
    const api = await connectAsync(broker.url, {
      clientId: 'api',
      username: 'api',
      password: await signDeviceToken(SECRET, { role: 'service', sub: 'api' }),
    })
    cleanup.push(() => api.endAsync())
    const send = (cmd: object) =>
      api.publishAsync(
        'fleet/test/drones/drone-1/commands',
        JSON.stringify({ v: 1, ts: Date.now(), id: randomUUID(), ...cmd }),
        { qos: 2 },
      )
    const stop = (s: typeof home) => ({ stationId: s!.stationId, lat: s!.lat, lon: s!.lon })
    await send({
      type: 'delivery.assign',
      deliveryId: 'del-c',
      pickup: stop(other),
      dropoff: stop(home),
    })
    await watcher.next((m) => m.topic.endsWith('/telemetry') && m.json.state === 'to_pickup')
    await send({ type: 'cancel', deliveryId: 'del-c' })
    const failed = await watcher.next(
      (m) => m.topic.endsWith('/events') && m.json.type === 'delivery.failed',
    )
    expect(failed.json).toMatchObject({ deliveryId: 'del-c', detail: 'cancelled' })
    await watcher.next((m) => m.topic.endsWith('/telemetry') && m.json.state === 'returning')

    await send({ type: 'return_to_base', stationId: other!.stationId })
    await watcher.next(() => fleet.drones[0]!.model.dockedAt === other!.stationId, 20_000)
  })

  it('refuses an assignment it cannot fly and says why', async () => {
    await withFleet(fleetOptions(broker.url, { drones: 1 }), cleanup)
    const api = await connectAsync(broker.url, {
      clientId: 'api',
      username: 'api',
      password: await signDeviceToken(SECRET, { role: 'service', sub: 'api' }),
    })
    cleanup.push(() => api.endAsync())
    const far = { stationId: 'station-far', lat: 40.0, lon: 10.0 } // about 1,000 km away
    const command = {
      v: 1,
      ts: Date.now(),
      id: randomUUID(),
      type: 'delivery.assign',
      deliveryId: 'del-far',
      pickup: far,
      dropoff: far,
    }
    await api.publishAsync('fleet/test/drones/drone-1/commands', JSON.stringify(command), {
      qos: 2,
    })
    const refusal = await watcher.next((m) => m.topic.endsWith('/events'))
    expect(refusal.json).toMatchObject({ type: 'delivery.failed', deliveryId: 'del-far' })
    expect(refusal.json.detail).toMatch(/^insufficient_battery/)
  })

  it('keeps every device connected on a broker that allows one connection per device', async () => {
    // Each drone and station has a token of its own (issue 14 bounds connections per
    // token identity): none takes another's connection over.
    const fleet = await withFleet(fleetOptions(broker.url, { drones: 20, stations: 4 }), cleanup)
    await watcher.next(
      () =>
        new Set(watcher.seen.filter((m) => m.topic.endsWith('/status')).map((m) => m.topic))
          .size === 24,
    )
    expect(fleet.connectedDrones).toBe(20)
    const { metrics } = broker
    expect(await metrics.value(metrics.identities)).toBe(25) // and the watcher
    expect(await metrics.value(metrics.disconnects, { reason: 'identity_takeover' })).toBe(0)
  })

  it('sends telemetry with seq rising by one per message', async () => {
    await withFleet(fleetOptions(broker.url, { drones: 3, rateHz: 10 }), cleanup)
    await watcher.next(() => watcher.on('drone-3', 'telemetry').length >= 10)
    for (const id of ['drone-1', 'drone-2', 'drone-3']) {
      const seqs = watcher.on(id, 'telemetry').map((m) => m.json.seq as number)
      expect(seqs.length).toBeGreaterThan(3)
      expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i))
    }
  })

  it('counts the QoS 1 telemetry the broker acknowledged', async () => {
    const fleet = await withFleet(
      fleetOptions(broker.url, { drones: 2, rateHz: 10, telemetryQos: 1 }),
      cleanup,
    )
    await watcher.next(() => watcher.on('drone-2', 'telemetry').length >= 10)
    // A clean stop waits for the acknowledgements of what is in flight.
    await fleet.stop()
    expect(fleet.stats.telemetryAcked).toBeGreaterThanOrEqual(20)
    expect(fleet.stats.telemetryAcked).toBe(fleet.stats.telemetry)
  })

  it('announces drones and stations online, retained, with stations listing docked drones', async () => {
    await withFleet(fleetOptions(broker.url, { drones: 4, stations: 2 }), cleanup)
    const late = await Watcher.start(broker.url, 'test', 'late')
    cleanup.push(() => late.close())
    const status = await late.next((m) => m.topic.endsWith('/drone-4/status'))
    expect(status.retain).toBe(true)
    expect(status.json).toMatchObject({ online: true, state: 'charging' })
    const station = await late.next(
      (m) => m.topic.endsWith('/station-1/status') && (m.json.docked as string[]).length > 0,
    )
    expect(station.json.docked).toEqual(['drone-1', 'drone-3'])
  })

  it('publishes its last will when a drone socket dies, then comes back online', async () => {
    const fleet = await withFleet(fleetOptions(broker.url, { drones: 1 }), cleanup)
    await watcher.next((m) => m.topic.endsWith('/drone-1/status') && m.json.online === true)
    const before = watcher.seen.length
    fleet.drones[0]!.connection!.client.stream.destroy()
    const will = await watcher.next(
      (m, i = watcher.seen.indexOf(m)) => i >= before && m.topic.endsWith('/drone-1/status'),
    )
    expect(will.json).toMatchObject({ online: false, state: 'offline', reason: 'connection_lost' })
    const back = await watcher.next(
      (m) =>
        watcher.seen.indexOf(m) > watcher.seen.indexOf(will) && m.topic.endsWith('/drone-1/status'),
    )
    expect(back.json.online).toBe(true)
    expect(fleet.stats.reconnects).toBe(1)
  })

  it('with --chaos, drops drones without DISCONNECT so the broker fires their wills', async () => {
    const fleet = await withFleet(
      fleetOptions(broker.url, { drones: 2, chaosPerMin: 0.5, timeScale: 60 }),
      cleanup,
    )
    const will = await watcher.next(
      (m) => m.topic.endsWith('/status') && m.json.reason === 'connection_lost',
    )
    expect(will.json).toMatchObject({ online: false, state: 'offline' })
    const drone = will.topic.split('/')[3]!
    await watcher.next(
      (m) =>
        watcher.seen.indexOf(m) > watcher.seen.indexOf(will) &&
        m.topic.endsWith(`/${drone}/status`) &&
        m.json.online === true,
    )
    expect(fleet.stats.chaosDrops).toBeGreaterThan(0)
  })

  it('has stations request deliveries to other stations', async () => {
    await withFleet(
      fleetOptions(broker.url, { drones: 1, stations: 3, demandPerMin: 60, timeScale: 10 }),
      cleanup,
    )
    await watcher.next(() => watcher.seen.filter((m) => m.topic.endsWith('/requests')).length >= 5)
    for (const m of watcher.seen.filter((x) => x.topic.endsWith('/requests'))) {
      const from = m.topic.split('/')[3]
      expect(m.json.dropoffStationId).not.toBe(from)
      expect(['station-1', 'station-2', 'station-3']).toContain(m.json.dropoffStationId)
    }
  })

  it('in patrol mode flies drones between stations with no dispatcher', async () => {
    const fleet = await withFleet(
      fleetOptions(broker.url, { drones: 2, patrol: true, timeScale: 100 }),
      cleanup,
    )
    await watcher.next(
      (m) =>
        m.topic.endsWith('/telemetry') &&
        m.json.state === 'en_route' &&
        (m.json.speedMps as number) > 0,
    )
    const docked = fleet.drones.map((d) => d.model.dockedAt)
    await watcher.next(
      () =>
        fleet.drones.some(
          (d, i) => d.model.dockedAt !== undefined && d.model.dockedAt !== docked[i],
        ),
      20_000,
    )
  })

  it('stops cleanly: every device says why it left and no will fires', async () => {
    const fleet = await withFleet(fleetOptions(broker.url, { drones: 3 }), cleanup)
    await watcher.next((m) => m.topic.endsWith('/drone-3/status'))
    await fleet.stop()
    await watcher.next(() => watcher.seen.filter((m) => m.json.reason === 'shutdown').length === 5)
    expect(watcher.seen.filter((m) => m.json.reason === 'connection_lost')).toEqual([])
  })
})
