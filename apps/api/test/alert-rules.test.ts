// The alert rules (apps/api/src/alerts/rules.ts) as pure functions of the state and an
// injected clock: which alerts open, which resolve, and why.
import { describe, expect, it } from 'vitest'
import {
  judgeLate,
  judgeLost,
  judgePoints,
  judgeRoutes,
  judgeStations,
  subjectKey,
} from '../src/alerts/rules.ts'
import type {
  DroneOfDelivery,
  DronePoint,
  OpenAlert,
  PromisedDelivery,
  ZoneRef,
} from '../src/alerts/rules.ts'
import { backoffMs, sign } from '../src/alerts/webhook.ts'
import { createHmac } from 'node:crypto'

const T0 = new Date('2026-05-01T10:00:00Z')
/** T0 + `s` seconds. */
const at = (s: number) => new Date(T0.getTime() + s * 1000)
const battery = { lowPct: (f: string) => (f === 'strict' ? 40 : 20), clearMarginPct: 5 }
const NO_FLY: ZoneRef = { id: 'z1', name: 'Stadium', kind: 'no_fly', notifyOnEnterLeave: false }
const AREA: ZoneRef = { id: 'a1', name: 'Park', kind: 'area', notifyOnEnterLeave: true }
const QUIET_AREA: ZoneRef = { id: 'a2', name: 'Lake', kind: 'area', notifyOnEnterLeave: false }

const point = (o: Partial<DronePoint> = {}): DronePoint => ({
  fleetId: 'f1',
  droneId: 'd1',
  ts: T0.getTime(),
  receivedAt: T0,
  lat: 48.85,
  lon: 2.35,
  batteryPct: 80,
  deliveryId: null,
  zones: [],
  ...o,
})
const alert = (id: string, o: Partial<OpenAlert>): OpenAlert => ({
  id,
  fleetId: 'f1',
  kind: 'battery_low',
  subject: { droneId: 'd1' },
  ...o,
})

describe('battery_low', () => {
  it('opens below the fleet threshold, per fleet', () => {
    const d = judgePoints(
      [point({ batteryPct: 19.9 }), point({ fleetId: 'strict', batteryPct: 35 })],
      [],
      battery,
    )
    expect(d.open.map((o) => [o.fleetId, o.kind, o.facts.thresholdPct])).toEqual([
      ['f1', 'battery_low', 20],
      ['strict', 'battery_low', 40],
    ])
    expect(d.resolve).toEqual([])
    expect(judgePoints([point({ batteryPct: 20 })], [], battery).open).toEqual([])
  })

  it('stays open until the battery is back above the threshold by the margin (hysteresis)', () => {
    const open = [alert('b1', {})]
    expect(judgePoints([point({ batteryPct: 24.9 })], open, battery)).toEqual({
      open: [],
      resolve: [],
    })
    const d = judgePoints([point({ batteryPct: 25 })], open, battery)
    expect(d.open).toEqual([])
    expect(d.resolve).toMatchObject([
      {
        id: 'b1',
        facts: { resolution: 'battery_recovered', lastBatteryPct: 25 },
      },
    ])
  })

  it('leaves the alerts of drones without a point alone', () => {
    const open = [alert('b2', { subject: { droneId: 'd2' } })]
    expect(judgePoints([point()], open, battery).resolve).toEqual([])
  })
})

describe('geofence_breach', () => {
  it('opens one per no-fly zone and per area that asks, not for a quiet area', () => {
    const d = judgePoints([point({ zones: [NO_FLY, AREA, QUIET_AREA] })], [], battery)
    expect(d.open.map((o) => [subjectKey(o.subject), o.severity, o.facts.zoneKind])).toEqual([
      ['drone:d1/zone:z1', 'critical', 'no_fly'],
      ['drone:d1/zone:a1', 'info', 'area'],
    ])
  })

  it('does not open twice, and resolves on leaving the zone', () => {
    const open = [
      alert('g1', { kind: 'geofence_breach', subject: { droneId: 'd1', zoneId: 'z1' } }),
    ]
    expect(judgePoints([point({ zones: [NO_FLY] })], open, battery).open).toEqual([])
    const left = judgePoints([point({ lat: 48.9 })], open, battery)
    expect(left.resolve).toMatchObject([
      {
        id: 'g1',
        facts: { resolution: 'left_zone', lat: 48.9 },
      },
    ])
  })
})

describe('drone_lost', () => {
  const row = (o: Partial<DroneOfDelivery> = {}): DroneOfDelivery => ({
    fleetId: 'f1',
    deliveryId: 'x1',
    deliveryStatus: 'en_route',
    deliveryDroneId: 'd1',
    droneId: 'd1',
    online: true,
    lastSeenAt: T0,
    offlineReason: null,
    onlineChangedAt: T0,
    ...o,
  })
  const rule = (nowS: number) => ({
    now: new Date(T0.getTime() + nowS * 1000),
    staleAfterS: 30,
    offlineGraceS: 10,
    listeningSince: new Date(T0.getTime() - 3_600_000),
  })
  const lostAlert = alert('l1', {
    kind: 'drone_lost',
    subject: { droneId: 'd1', deliveryId: 'x1' },
  })

  it('opens when the drone of a delivery in flight has been offline for ALERT_OFFLINE_GRACE_S', () => {
    const off = row({ online: false, offlineReason: 'connection_lost' })
    expect(judgeLost([off], [], rule(9.9)).open).toEqual([])
    const d = judgeLost([off], [], rule(10))
    expect(d.open).toMatchObject([
      {
        kind: 'drone_lost',
        subject: { droneId: 'd1', deliveryId: 'x1' },
        facts: { offlineReason: 'connection_lost' },
      },
    ])
  })

  it('opens nothing for a connection dropped and back within the grace', () => {
    // The will at T0: sweeps while it is away open nothing…
    const off = row({ online: false, offlineReason: 'connection_lost' })
    for (const s of [0, 2, 5.9]) expect(judgeLost([off], [], rule(s)).open).toEqual([])
    // …and back online 6 s later and heard since, nothing opens after either.
    const back = row({ online: true, onlineChangedAt: at(6), lastSeenAt: at(11) })
    for (const s of [12, 20]) expect(judgeLost([back], [], rule(s)).open).toEqual([])
    // With no grace, the will alone opens it (at once).
    expect(judgeLost([off], [], { ...rule(0), offlineGraceS: 0 }).open).toHaveLength(1)
  })

  it('opens when the drone has not been heard for ALERT_STALE_S, not before', () => {
    expect(judgeLost([row()], [], rule(30)).open).toEqual([])
    expect(judgeLost([row()], [], rule(31)).open).toHaveLength(1)
  })

  it('does not judge a silence the api did not listen through (after its restart)', () => {
    const r = { ...rule(60), listeningSince: new Date(T0.getTime() + 50_000) }
    expect(judgeLost([row()], [], r).open).toEqual([])
  })

  it('stays open when the delivery fails without its drone; resolves when the drone is heard', () => {
    const failed = row({ deliveryStatus: 'failed', online: false })
    expect(judgeLost([failed], [lostAlert], rule(200))).toEqual({ open: [], resolve: [] })
    // Failed, but no alert was open: a failed delivery is not "in flight".
    expect(judgeLost([failed], [], rule(200)).open).toEqual([])
    const heard = judgeLost(
      [row({ lastSeenAt: new Date(T0.getTime() + 199_000) })],
      [lostAlert],
      rule(200),
    )
    expect(heard.resolve).toMatchObject([
      {
        id: 'l1',
        facts: { resolution: 'drone_heard' },
      },
    ])
  })

  it('resolves when the delivery is settled otherwise (completed, or given to another drone)', () => {
    for (const r of [
      row({ deliveryStatus: 'cancelled', online: false }),
      row({ deliveryStatus: 'requested', deliveryDroneId: null, online: false }),
    ]) {
      const d = judgeLost([r], [lostAlert], rule(200))
      expect(d.resolve).toMatchObject([
        {
          facts: { resolution: 'delivery_settled' },
        },
      ])
    }
  })
})

describe('station_offline', () => {
  const rule = (s: number) => ({ now: at(s), offlineGraceS: 10 })
  const off = { fleetId: 'f1', stationId: 's1', online: false, onlineChangedAt: T0 }

  it('opens for a station offline for the grace and resolves once it is back', () => {
    expect(judgeStations([off], [], rule(10)).open).toMatchObject([
      { kind: 'station_offline', subject: { stationId: 's1' } },
    ])
    const open = [alert('s', { kind: 'station_offline', subject: { stationId: 's1' } })]
    expect(judgeStations([off], open, rule(11))).toEqual({ open: [], resolve: [] })
    expect(judgeStations([], open, rule(12)).resolve).toMatchObject([
      { id: 's', facts: { resolution: 'station_online' } },
    ])
  })

  it('opens nothing for a station offline within the grace (back before it ends)', () => {
    expect(judgeStations([off], [], rule(9.9))).toEqual({ open: [], resolve: [] })
    // Back at 5 s: not among the offline ones any more, nothing to open or resolve.
    expect(judgeStations([], [], rule(12))).toEqual({ open: [], resolve: [] })
    // Offline again at 20 s: the grace counts from then.
    const again = { ...off, onlineChangedAt: at(20) }
    expect(judgeStations([again], [], rule(29)).open).toEqual([])
    expect(judgeStations([again], [], rule(30)).open).toHaveLength(1)
  })
})

describe('route_blocked', () => {
  const route = (o: Partial<Parameters<typeof judgeRoutes>[0][number]> = {}) => ({
    fleetId: 'f1',
    deliveryId: 'x1',
    pickupStationId: 's1',
    dropoffStationId: 's2',
    failedAt: T0,
    crossing: [{ id: 'z1', name: 'Stadium' }],
    alerted: false,
    ...o,
  })
  const open = [alert('r1', { kind: 'route_blocked', subject: { deliveryId: 'x1' } })]

  it('opens once for a delivery failed route_blocked, naming the zones', () => {
    expect(judgeRoutes([route()], []).open).toMatchObject([
      {
        subject: { deliveryId: 'x1' },
        facts: { zones: [{ id: 'z1', name: 'Stadium' }] },
      },
    ])
    expect(judgeRoutes([route()], open)).toEqual({ open: [], resolve: [] })
    // Its alert resolved before (the route was clear), blocked again: not opened again.
    expect(judgeRoutes([route({ alerted: true })], []).open).toEqual([])
  })

  it('resolves when the route crosses no active no-fly zone any more', () => {
    expect(judgeRoutes([route({ crossing: [], alerted: true })], open).resolve).toMatchObject([
      { id: 'r1', facts: { resolution: 'route_clear' } },
    ])
  })
})

describe('delivery_late', () => {
  // Promised for T0 + 600 s; the drone's clock is the api's (heard just now).
  const promised = (o: Partial<PromisedDelivery> = {}): PromisedDelivery => ({
    fleetId: 'f1',
    deliveryId: 'x1',
    status: 'en_route',
    droneId: 'd1',
    promisedAt: at(600),
    etaAt: at(600),
    arrivedAt: null,
    positionAt: T0,
    lastSeenAt: T0,
    ...o,
  })
  const rule = { now: T0, marginS: 120 }
  const lateAlert = alert('l1', { kind: 'delivery_late', subject: { deliveryId: 'x1' } })

  it('opens when the ETA has slipped past the promise by more than the margin, not within it', () => {
    expect(judgeLate([promised({ etaAt: at(720) })], [], rule).open).toEqual([])
    const d = judgeLate([promised({ etaAt: at(721) })], [], rule)
    expect(d.open).toEqual([
      {
        fleetId: 'f1',
        kind: 'delivery_late',
        severity: 'warning',
        subject: { deliveryId: 'x1' },
        facts: {
          promisedAt: at(600).toISOString(),
          etaAt: at(721).toISOString(),
          latenessS: 121,
          marginS: 120,
          deliveryStatus: 'en_route',
          droneId: 'd1',
        },
      },
    ])
  })

  it('opens when the delivery is still in flight past the promise and the margin, by the clock', () => {
    // Not yet departed: no ETA at all; or an ETA left behind in the past.
    const rows = [
      promised({ status: 'to_pickup', etaAt: null }),
      promised({ deliveryId: 'x2', etaAt: at(500) }),
    ]
    const judged = (s: number) =>
      judgeLate(
        rows.map((r) => ({ ...r, positionAt: at(s), lastSeenAt: at(s) })),
        [],
        { ...rule, now: at(s) },
      )
    expect(judged(720).open).toEqual([])
    expect(judged(721).open.map((o) => [o.subject.deliveryId, o.facts.latenessS])).toEqual([
      ['x1', 121],
      ['x2', 121],
    ])
  })

  it("judges by the drone's clock: a time-scaled drone's points run ahead of the api's", () => {
    // Its last point, heard 2 s ago by the api, was at T0 + 700 s of its own time: 102 s
    // late on its clock (the api's says 0 s: nothing would ever open).
    const ahead = promised({ etaAt: null, positionAt: at(700), lastSeenAt: at(-2) })
    expect(judgeLate([ahead], [], rule).open).toEqual([])
    expect(judgeLate([ahead], [], { ...rule, now: at(19) }).open[0]?.facts.latenessS).toBe(121)
  })

  it('stays open until the ETA is back within half the margin (hysteresis)', () => {
    expect(judgeLate([promised({ etaAt: at(661) })], [lateAlert], rule)).toEqual({
      open: [],
      resolve: [],
    })
    expect(judgeLate([promised({ etaAt: at(660) })], [lateAlert], rule).resolve).toEqual([
      {
        id: 'l1',
        kind: 'delivery_late',
        facts: { resolution: 'back_on_time', deliveryStatus: 'en_route', latenessS: 60 },
      },
    ])
  })

  it('resolves when the delivery completes, fails, is cancelled or goes back to the queue', () => {
    const cases = [
      ['completed', 'delivered'],
      ['failed', 'delivery_failed'],
      ['cancelled', 'delivery_cancelled'],
      ['requested', 'delivery_requeued'],
    ] as const
    for (const [status, resolution] of cases) {
      const d = judgeLate([promised({ status, etaAt: at(9_999) })], [lateAlert], rule)
      expect(d.open).toEqual([])
      expect(
        d.resolve.map((r) => r.facts.resolution),
        status,
      ).toEqual([resolution])
    }
    // Not read any more (gone): resolved too.
    expect(judgeLate([], [lateAlert], rule).resolve[0]?.facts.resolution).toBe('delivery_gone')
  })

  it('judges an arrived delivery by its arrival, not by the time it waits docked', () => {
    const docked = promised({ status: 'arrived', arrivedAt: at(650), etaAt: at(650) })
    expect(judgeLate([docked], [], { ...rule, now: at(3_600) }).open).toEqual([])
    const late = { ...docked, arrivedAt: at(800) }
    expect(judgeLate([late], [], { ...rule, now: at(3_600) }).open).toHaveLength(1)
  })

  it('leaves a delivery with no promise alone (assigned before promises were kept)', () => {
    const d = judgeLate([promised({ promisedAt: null, etaAt: at(9_999) })], [], rule)
    expect(d).toEqual({ open: [], resolve: [] })
  })
})

describe('the webhook', () => {
  it('signs "t.body" with HMAC-SHA256 in Stripe\'s header form', () => {
    const body = '{"id":"a"}'
    const expected = createHmac('sha256', 'k'.repeat(16)).update(`1700000000.${body}`).digest('hex')
    expect(sign('k'.repeat(16), body, 1_700_000_000)).toBe(`t=1700000000,v1=${expected}`)
  })

  it('waits twice as long after each failure, up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, 1_000, 10_000))).toEqual([
      1_000, 2_000, 4_000, 8_000, 10_000, 10_000,
    ])
  })
})
