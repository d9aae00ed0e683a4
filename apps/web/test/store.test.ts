import { describe, expect, it } from 'vitest'
import type { Alert, DeliveryView, DroneView, FleetView, StationView } from '@skyline/schemas'
import { FleetStore } from '../src/store.ts'
import { clockTime, etaShown, etaText, stateText } from '../src/format.ts'

const drone = (id: string, o: Partial<DroneView> = {}): DroneView => ({
  id,
  fleetId: 'f1',
  online: true,
  state: 'idle',
  stationId: null,
  model: null,
  firmware: null,
  position: { lat: 48.85, lon: 2.35, altM: 0 },
  speedMps: 0,
  headingDeg: 0,
  batteryPct: 90,
  deliveryId: null,
  lastSeq: 1,
  positionAt: '2026-11-25T10:00:00.000Z',
  lastSeenAt: '2026-11-25T10:00:00.000Z',
  onlineChangedAt: null,
  offlineReason: null,
  ...o,
})

const station = (id: string): StationView => ({
  id,
  fleetId: 'f1',
  name: id,
  lat: 48.85,
  lon: 2.35,
  capacity: 4,
  docked: [],
  online: true,
  statusAt: '2026-11-25T10:00:00.000Z',
  onlineChangedAt: null,
})

const delivery = (id: string, o: Partial<DeliveryView> = {}): DeliveryView => ({
  id,
  fleetId: 'f1',
  status: 'en_route',
  source: 'api',
  pickupStationId: 's1',
  dropoffStationId: 's2',
  payloadKg: 1,
  droneId: 'd1',
  distanceM: 1000,
  requestedAt: '2026-11-25T10:00:00.000Z',
  assignedAt: null,
  pickedUpAt: null,
  departedAt: null,
  arrivedAt: null,
  completedAt: null,
  failedAt: null,
  cancelledAt: null,
  failureReason: null,
  etaAt: '2026-11-25T10:05:00.000Z',
  etaErrorS: null,
  ...o,
})

const snapshot = (o: Partial<FleetView> = {}): FleetView => ({
  at: '2026-11-25T10:00:00.000Z',
  drones: [drone('d1'), drone('d2')],
  stations: [station('s1'), station('s2')],
  deliveries: [delivery('x1')],
  ...o,
})

const changes = (o: {
  drones?: ({ id: string; fleetId: string } & Partial<DroneView>)[]
  stations?: StationView[]
  deliveries?: DeliveryView[]
  alerts?: Alert[]
}) => ({
  type: 'changes' as const,
  at: '2026-11-25T10:00:01.000Z',
  drones: o.drones ?? [],
  stations: o.stations ?? [],
  deliveries: o.deliveries ?? [],
  alerts: o.alerts ?? [],
})

const alert = (id: string, o: Partial<Alert> = {}): Alert => ({
  v: 1,
  ts: 1,
  id,
  fleetId: 'f1',
  kind: 'battery_low',
  severity: 'warning',
  state: 'open',
  subject: { droneId: 'd1' },
  openedAt: '2026-11-25T10:00:00.000Z',
  acknowledgedAt: null,
  acknowledgedBy: null,
  resolvedAt: null,
  facts: {},
  ...o,
})

describe('FleetStore', () => {
  it('replaces everything with a snapshot and reports a reset', () => {
    const store = new FleetStore()
    store.applySnapshot(snapshot({ drones: [drone('old')] }))
    const c = store.apply({ type: 'snapshot', ...snapshot(), alerts: [] })
    expect(c.reset).toBe(true)
    expect([...store.drones.keys()]).toEqual(['f1/d1', 'f1/d2'])
    expect(store.deliveryOf({ fleetId: 'f1', id: 'd1' })?.id).toBe('x1')
  })

  it('merges a partial drone change and reports only that drone', () => {
    const store = new FleetStore()
    store.applySnapshot(snapshot())
    const c = store.apply(
      changes({
        drones: [{ id: 'd2', fleetId: 'f1', position: { lat: 1, lon: 2, altM: 50 }, speedMps: 12 }],
      }),
    )
    expect([...c.drones]).toEqual(['f1/d2'])
    const d2 = store.drones.get('f1/d2')!
    expect(d2.position).toEqual({ lat: 1, lon: 2, altM: 50 })
    expect(d2.speedMps).toBe(12)
    expect(d2.batteryPct).toBe(90)
  })

  it('adds a drone first heard of in a change', () => {
    const store = new FleetStore()
    store.applySnapshot(snapshot())
    store.apply(changes({ drones: [{ id: 'd9', fleetId: 'f2', state: 'en_route' }] }))
    expect(store.drones.get('f2/d9')).toMatchObject({ id: 'd9', fleetId: 'f2', state: 'en_route' })
  })

  it('keys drones by fleet: the same id in two fleets is two drones', () => {
    const store = new FleetStore()
    store.applySnapshot(snapshot({ drones: [drone('d1'), { ...drone('d1'), fleetId: 'f2' }] }))
    expect(store.drones.size).toBe(2)
  })

  it('drops a delivery when it finishes, and the drone no longer has one', () => {
    const store = new FleetStore()
    store.applySnapshot(snapshot())
    const c = store.apply(changes({ deliveries: [delivery('x1', { status: 'completed' })] }))
    expect(c.deliveries).toBe(true)
    expect(c.drones.has('f1/d1')).toBe(true)
    expect(store.deliveries.size).toBe(0)
    expect(store.deliveryOf({ fleetId: 'f1', id: 'd1' })).toBeUndefined()
  })

  it('moves a reassigned delivery from one drone to the other', () => {
    const store = new FleetStore()
    store.applySnapshot(snapshot())
    const c = store.apply(changes({ deliveries: [delivery('x1', { droneId: 'd2' })] }))
    expect(c.drones).toEqual(new Set(['f1/d2', 'f1/d1']))
    expect(store.deliveryOf({ fleetId: 'f1', id: 'd1' })).toBeUndefined()
    expect(store.deliveryOf({ fleetId: 'f1', id: 'd2' })?.id).toBe('x1')
  })

  it('marks a drone offline and clears the reason when it comes back', () => {
    const store = new FleetStore()
    store.applySnapshot(snapshot())
    store.apply(
      changes({
        drones: [
          {
            id: 'd1',
            fleetId: 'f1',
            online: false,
            state: 'offline',
            onlineChangedAt: '2026-11-25T10:00:01.000Z',
            offlineReason: 'connection_lost',
          },
        ],
      }),
    )
    expect(store.countByState().get('offline')).toBe(1)
    expect(stateText(store.drones.get('f1/d1')!)).toMatch(/^offline since \d\d:\d\d:\d\d$/)
    store.apply(changes({ drones: [{ id: 'd1', fleetId: 'f1', online: true, state: 'idle' }] }))
    expect(store.drones.get('f1/d1')).toMatchObject({ state: 'idle', offlineReason: null })
  })

  it('takes a frame with telemetry or an online status as the time the drone was heard, not its will', () => {
    const store = new FleetStore()
    store.applySnapshot(snapshot())
    const heard = (at: string, change: Partial<DroneView>) => {
      store.apply({ ...changes({ drones: [{ id: 'd1', fleetId: 'f1', ...change }] }), at })
      return store.drones.get('f1/d1')!.lastSeenAt
    }
    expect(heard('2026-11-25T10:00:05.000Z', { positionAt: '2026-11-25T10:07:00.000Z' })).toBe(
      '2026-11-25T10:00:05.000Z',
    )
    expect(
      heard('2026-11-25T10:00:40.000Z', {
        online: false,
        state: 'offline',
        onlineChangedAt: '2026-11-25T10:00:39.000Z',
      }),
    ).toBe('2026-11-25T10:00:05.000Z')
    expect(heard('2026-11-25T10:00:50.000Z', { batteryPct: 40 })).toBe('2026-11-25T10:00:05.000Z')
    expect(heard('2026-11-25T10:01:00.000Z', { online: true, state: 'en_route' })).toBe(
      '2026-11-25T10:01:00.000Z',
    )
    // One the api sends wins.
    expect(
      heard('2026-11-25T10:02:00.000Z', {
        positionAt: '2026-11-25T10:09:00.000Z',
        lastSeenAt: '2026-11-25T10:01:59.500Z',
      }),
    ).toBe('2026-11-25T10:01:59.500Z')
  })

  it('updates a station in place', () => {
    const store = new FleetStore()
    store.applySnapshot(snapshot())
    const c = store.apply(changes({ stations: [{ ...station('s1'), online: false }] }))
    expect(c.stations).toBe(true)
    expect(store.station('f1', 's1')?.online).toBe(false)
  })
})

describe('etaText', () => {
  it('gives the clock time and the minutes left on the drone clock', () => {
    const d = drone('d1', { positionAt: '2026-11-25T10:00:00.000Z' })
    expect(etaText(delivery('x1'), d)).toMatch(/^\d\d:\d\d:\d\d \(5 min\)$/)
  })

  it('is empty without an ETA', () => {
    expect(etaText(delivery('x1', { etaAt: null }), drone('d1'))).toBe('')
    expect(etaText(undefined, drone('d1'))).toBe('')
  })
})

describe('etaShown', () => {
  const lastSeenAt = '2026-11-25T10:01:30.000Z'

  it('shows the live ETA while the drone is heard', () => {
    expect(etaShown(delivery('x1'), drone('d1'))).toEqual({
      kind: 'live',
      eta: `${clockTime('2026-11-25T10:05:00.000Z')} (5 min)`,
    })
  })

  it.each([
    ['its last will came', { online: false, state: 'offline' as const }],
    ['it went stale', { state: 'stale' as const }],
    ['it is not online, whatever state a late point left', { online: false }],
  ])('shows when the signal was lost and the last ETA once %s', (_, o) => {
    expect(etaShown(delivery('x1'), drone('d1', { lastSeenAt, ...o }))).toEqual({
      kind: 'lost',
      lostAt: clockTime(lastSeenAt),
      lastEta: clockTime('2026-11-25T10:05:00.000Z'),
    })
  })

  it('says the signal is lost even without an ETA or a time last heard', () => {
    const d = drone('d1', { online: false, state: 'offline', lastSeenAt: null })
    expect(etaShown(delivery('x1', { etaAt: null }), d)).toEqual({
      kind: 'lost',
      lostAt: null,
      lastEta: null,
    })
  })

  it('shows nothing without a delivery in flight, or a live one without an ETA', () => {
    const offline = drone('d1', { online: false, state: 'offline' })
    expect(etaShown(undefined, offline)).toBeUndefined()
    expect(etaShown(delivery('x1', { status: 'requested' }), offline)).toBeUndefined()
    expect(etaShown(delivery('x1', { status: 'arrived' }), offline)).toBeUndefined()
    expect(etaShown(delivery('x1', { etaAt: null }), drone('d1'))).toBeUndefined()
  })

  it('comes back live when the drone is heard again', () => {
    const store = new FleetStore()
    store.applySnapshot(snapshot())
    const shown = () =>
      etaShown(store.deliveryOf({ fleetId: 'f1', id: 'd1' }), store.drones.get('f1/d1')!)
    store.apply(changes({ drones: [{ id: 'd1', fleetId: 'f1', state: 'stale' }] }))
    expect(shown()?.kind).toBe('lost')
    store.apply(
      changes({ drones: [{ id: 'd1', fleetId: 'f1', state: 'en_route', positionAt: lastSeenAt }] }),
    )
    expect(shown()?.kind).toBe('live')
    store.apply(changes({ drones: [{ id: 'd1', fleetId: 'f1', online: false, state: 'offline' }] }))
    expect(shown()?.kind).toBe('lost')
    store.apply(changes({ drones: [{ id: 'd1', fleetId: 'f1', online: true, state: 'en_route' }] }))
    expect(shown()?.kind).toBe('live')
  })
})

describe('FleetStore alerts', () => {
  it('lists alerts open first, then acknowledged, newest first; drops resolved ones; announces only new ones', () => {
    const store = new FleetStore()
    store.apply({
      type: 'snapshot',
      ...snapshot(),
      alerts: [
        alert('old', { openedAt: '2026-11-25T09:00:00.000Z' }),
        alert('acked', { state: 'acknowledged', openedAt: '2026-11-25T11:00:00.000Z' }),
      ],
    })
    const c = store.apply(
      changes({
        alerts: [
          alert('new', { ts: 5, openedAt: '2026-11-25T10:30:00.000Z' }),
          alert('old', { ts: 5, state: 'acknowledged' }),
        ],
      }),
    )
    expect(c.alerts).toBe(true)
    expect(c.opened.map((a) => a.id)).toEqual(['new'])
    expect(store.alertList().map((a) => a.id)).toEqual(['new', 'acked', 'old'])
    // Versions out of order: an older one does not undo a newer.
    const late = store.apply(changes({ alerts: [alert('old', { ts: 2, state: 'open' })] }))
    expect(late.opened).toEqual([])
    expect(store.alerts.get('old')?.state).toBe('acknowledged')
    store.apply(changes({ alerts: [alert('acked', { ts: 6, state: 'resolved' })] }))
    expect(store.alertList().map((a) => a.id)).toEqual(['new', 'old'])
    // GET /api/fleet has no alerts: it leaves the live stream's alone.
    store.applySnapshot(snapshot())
    expect(store.alerts.size).toBe(2)
  })
})
