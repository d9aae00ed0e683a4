import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { mayLeaveWill, mayPublish, mayRetain, maySubscribe, publishAuthorizer } from '../src/acl.ts'
import type { DeviceClaims } from '@skyline/auth'
import type { ClientIdentity } from '../src/client-identity.ts'
import { identityKey } from '../src/identities.ts'
import { collect, nextMessage, startTestBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// ARCHITECTURE.md "Roles": every role × own/other topic × publish/subscribe/will,
// through a real broker and real clients.
interface Cell {
  own: string
  other: string
  ownAllowed: boolean
}
interface RoleRow {
  claims: DeviceClaims
  publish: Cell
  subscribe: Cell
  will: Cell
}

const ROWS: RoleRow[] = [
  {
    claims: { role: 'drone', sub: 'd1', fleet: 'f1' },
    publish: {
      own: 'fleet/f1/drones/d1/telemetry',
      other: 'fleet/f1/drones/d2/telemetry',
      ownAllowed: true,
    },
    subscribe: {
      own: 'fleet/f1/drones/d1/commands',
      other: 'fleet/f1/drones/d2/commands',
      ownAllowed: true,
    },
    will: {
      own: 'fleet/f1/drones/d1/status',
      other: 'fleet/f1/drones/d2/status',
      ownAllowed: true,
    },
  },
  {
    claims: { role: 'station', sub: 's1', fleet: 'f1' },
    publish: {
      own: 'fleet/f1/stations/s1/requests',
      other: 'fleet/f1/stations/s2/requests',
      ownAllowed: true,
    },
    subscribe: {
      own: 'fleet/f1/stations/s1/status',
      other: 'fleet/f1/stations/s2/status',
      ownAllowed: false,
    },
    will: {
      own: 'fleet/f1/stations/s1/status',
      other: 'fleet/f2/stations/s1/status',
      ownAllowed: true,
    },
  },
  {
    claims: { role: 'service', sub: 'api' },
    publish: {
      own: 'fleet/f2/drones/d9/commands',
      other: 'fleet/f1/drones/d1/telemetry',
      ownAllowed: true,
    },
    subscribe: { own: 'fleet/#', other: '#', ownAllowed: true },
    will: {
      own: 'fleet/f1/drones/api/status',
      other: 'fleet/f1/drones/d1/status',
      ownAllowed: false,
    },
  },
  {
    claims: { role: 'viewer', sub: 'v1', fleet: 'f1' },
    publish: {
      own: 'fleet/f1/drones/d1/telemetry',
      other: 'fleet/f2/drones/d1/telemetry',
      ownAllowed: false,
    },
    subscribe: { own: 'fleet/f1/#', other: 'fleet/f2/#', ownAllowed: true },
    will: {
      own: 'fleet/f1/drones/v1/status',
      other: 'fleet/f2/drones/v1/status',
      ownAllowed: false,
    },
  },
  // Alerts (issue 18): the api's service role publishes a fleet's alerts, the fleet's
  // viewers read them, and a drone may do neither.
  {
    claims: { role: 'service', sub: 'api-f1', fleet: 'f1' },
    publish: { own: 'fleet/f1/alerts', other: 'fleet/f2/alerts', ownAllowed: true },
    subscribe: { own: 'fleet/f1/alerts', other: 'fleet/f2/alerts', ownAllowed: true },
    will: { own: 'fleet/f1/alerts', other: 'fleet/f2/alerts', ownAllowed: false },
  },
  {
    claims: { role: 'viewer', sub: 'v2', fleet: 'f1' },
    publish: { own: 'fleet/f1/alerts', other: 'fleet/f2/alerts', ownAllowed: false },
    subscribe: { own: 'fleet/f1/alerts', other: 'fleet/f2/alerts', ownAllowed: true },
    will: { own: 'fleet/f1/alerts', other: 'fleet/f2/alerts', ownAllowed: false },
  },
  {
    claims: { role: 'drone', sub: 'd3', fleet: 'f1' },
    publish: { own: 'fleet/f1/alerts', other: 'fleet/f2/alerts', ownAllowed: false },
    subscribe: { own: 'fleet/f1/alerts', other: 'fleet/f2/alerts', ownAllowed: false },
    will: { own: 'fleet/f1/alerts', other: 'fleet/f2/alerts', ownAllowed: false },
  },
]

describe('the authorization table, through a real broker', () => {
  let tb: TestBroker
  let watcher: MqttClient

  beforeAll(async () => {
    tb = await startTestBroker()
    watcher = await tb.connect({ role: 'service', sub: 'watcher' })
    await watcher.subscribeAsync('fleet/#', { qos: 1 })
  })
  afterAll(() => tb.close())

  const refused = (action: string) => tb.broker.metrics.value(tb.broker.metrics.refused, { action })

  for (const row of ROWS) {
    const { role, sub } = row.claims
    describe(`role ${role}`, () => {
      for (const side of ['own', 'other'] as const) {
        const allowed = side === 'own' && row.publish.ownAllowed
        it(`${allowed ? 'routes' : 'acknowledges and drops'} a publish on its ${side} topic`, async () => {
          const client = await tb.connect(row.claims, { clientId: `${sub}:pub-${side}` })
          const topic = row.publish[side]
          const payload = `${role}-${side}-${Date.now()}`
          const seen = collect(watcher)
          const before = await refused('publish')
          // QoS 1: the PUBACK proves the connection stays up and the ACL has decided.
          await client.publishAsync(topic, payload, { qos: 1 })
          expect(await refused('publish')).toBe(before + (allowed ? 0 : 1))
          expect(client.connected).toBe(true)
          if (row.publish.ownAllowed) {
            // One publisher's messages arrive in order: once a later allowed message is
            // through, a refused one would have arrived before it.
            const sentinel = nextMessage(watcher, (t) => t === row.publish.own)
            await client.publishAsync(row.publish.own, 'sentinel', { qos: 1 })
            await sentinel
          }
          expect(seen.some((m) => m.payload === payload)).toBe(allowed)
        })

        const subAllowed = side === 'own' && row.subscribe.ownAllowed
        it(`${subAllowed ? 'grants' : 'refuses in SUBACK'} a subscription to its ${side} filter`, async () => {
          const client = await tb.connect(row.claims, { clientId: `${sub}:sub-${side}` })
          const subscribing = client.subscribeAsync(row.subscribe[side], { qos: 1 })
          if (subAllowed) expect((await subscribing)[0]?.qos).toBe(1)
          // mqtt.js rejects a SUBACK with 0x80; the connection stays up.
          else await expect(subscribing).rejects.toMatchObject({ packet: { granted: [128] } })
          expect(client.connected).toBe(true)
        })

        const willAllowed = side === 'own' && row.will.ownAllowed
        it(`${willAllowed ? 'accepts' : 'refuses with not authorized'} a will on its ${side} status`, async () => {
          const connecting = tb.connect(row.claims, {
            clientId: `${sub}:will-${side}`,
            will: { topic: row.will[side], payload: Buffer.from('gone'), qos: 1, retain: true },
          })
          if (willAllowed) await expect(connecting).resolves.toBeTruthy()
          else await expect(connecting).rejects.toMatchObject({ code: 5 })
        })
      }
    })
  }

  it('drops a retained publish where the contract does not retain', async () => {
    const api = await tb.connect({ role: 'service', sub: 'api' }, { clientId: 'api-retain' })
    const before = await refused('publish')
    await api.publishAsync('fleet/f1/drones/d1/commands', '{}', { qos: 1, retain: true })
    expect(await refused('publish')).toBe(before + 1)
  })

  it('lets a drone not publish commands to itself', async () => {
    const drone = await tb.connect(
      { role: 'drone', sub: 'd1', fleet: 'f1' },
      { clientId: 'd1:cmd' },
    )
    const before = await refused('publish')
    await drone.publishAsync('fleet/f1/drones/d1/commands', '{}', { qos: 1 })
    expect(await refused('publish')).toBe(before + 1)
  })
})

describe('acl rules', () => {
  const drone: ClientIdentity = { role: 'drone', id: 'd1', fleet: 'f1' }
  const viewer: ClientIdentity = { role: 'viewer', id: 'v1', fleets: ['f1'] }
  const service: ClientIdentity = { role: 'service', id: 'api', fleets: '*' }

  it('refuses topics outside the grammar whoever asks', () => {
    for (const topic of [
      'fleet/f1/drones/d1',
      'fleet/f1/drones/d1/telemetry/x',
      '$SYS/x',
      'other/f1/drones/d1/telemetry',
    ]) {
      expect(mayPublish(drone, topic)).toBe(false)
      expect(mayPublish(service, topic)).toBe(false)
    }
  })

  it('keeps a drone to its own fleet', () => {
    expect(mayPublish(drone, 'fleet/f2/drones/d1/telemetry')).toBe(false)
    expect(mayLeaveWill(drone, 'fleet/f2/drones/d1/status')).toBe(false)
    expect(maySubscribe(drone, 'fleet/f2/drones/d1/commands')).toBe(false)
    expect(maySubscribe(drone, 'fleet/f1/drones/+/commands')).toBe(false)
  })

  it('keeps a viewer inside its fleet even with wildcards', () => {
    expect(maySubscribe(viewer, 'fleet/f1/drones/+/telemetry')).toBe(true)
    expect(maySubscribe(viewer, 'fleet/+/drones/#')).toBe(false)
    expect(maySubscribe(viewer, 'fleet/f10/#')).toBe(false)
    expect(maySubscribe(viewer, '#')).toBe(false)
  })

  it('lets the service read every fleet but not the broker internals', () => {
    expect(maySubscribe(service, 'fleet/+/drones/+/telemetry')).toBe(true)
    expect(maySubscribe(service, '$SYS/#')).toBe(false)
    expect(maySubscribe(service, '+/f1/#')).toBe(false)
  })

  it('lets no one retain an alert: the contract does not retain them', () => {
    expect(mayRetain('fleet/f1/alerts')).toBe(false)
    expect(mayRetain('fleet/f1/drones/d1/status')).toBe(true)
  })

  it('answers as mayPublish does when it remembers, past its bound too', () => {
    const mayDronePublish = publishAuthorizer(drone, 4)
    const topics = Array.from({ length: 10 }, (_, i) => `fleet/f1/drones/d${i}/telemetry`)
    for (const topic of [...topics, ...topics]) {
      expect(mayDronePublish(topic)).toBe(mayPublish(drone, topic))
    }
  })

  // Issue 16: a principal may hold several fleets (OIDC), a service token's fleet now
  // binds it, and an admin acts as a service across fleets.
  it('lets a viewer of several fleets subscribe to each of them, and to no other', () => {
    const multi: ClientIdentity = { role: 'viewer', id: 'v', fleets: ['f1', 'f2'] }
    expect(maySubscribe(multi, 'fleet/f1/#')).toBe(true)
    expect(maySubscribe(multi, 'fleet/f2/drones/+/telemetry')).toBe(true)
    expect(maySubscribe(multi, 'fleet/f3/#')).toBe(false)
    expect(maySubscribe(multi, 'fleet/+/drones/#')).toBe(false)
    expect(maySubscribe(multi, 'fleet/#')).toBe(false)
    const all: ClientIdentity = { role: 'viewer', id: 'v', fleets: '*' }
    expect(maySubscribe(all, 'fleet/#')).toBe(true)
    expect(mayPublish(all, 'fleet/f1/drones/d1/commands')).toBe(false)
  })

  it('keeps a service of some fleets to those fleets', () => {
    const ops: ClientIdentity = { role: 'service', id: 'ops', fleets: ['f1'] }
    expect(mayPublish(ops, 'fleet/f1/drones/d1/commands')).toBe(true)
    expect(mayPublish(ops, 'fleet/f2/drones/d1/commands')).toBe(false)
    expect(maySubscribe(ops, 'fleet/f1/#')).toBe(true)
    expect(maySubscribe(ops, 'fleet/#')).toBe(false)
    expect(maySubscribe(ops, 'fleet/+/drones/+/telemetry')).toBe(false)
  })

  it('lets an admin act as a service in every fleet, and nothing more', () => {
    const admin: ClientIdentity = { role: 'admin', id: 'root', fleets: '*' }
    expect(mayPublish(admin, 'fleet/f9/drones/d1/commands')).toBe(true)
    expect(mayPublish(admin, 'fleet/f9/drones/d1/telemetry')).toBe(false)
    expect(maySubscribe(admin, 'fleet/+/drones/+/telemetry')).toBe(true)
    expect(maySubscribe(admin, '$SYS/#')).toBe(false)
    expect(mayLeaveWill(admin, 'fleet/f9/drones/root/status')).toBe(false)
  })

  it('keys a one-fleet identity as before fleets were lists, and several with commas', () => {
    expect(identityKey(drone)).toBe('drone:f1:d1')
    expect(identityKey(viewer)).toBe('viewer:f1:v1')
    expect(identityKey(service)).toBe('service:*:api')
    expect(identityKey({ role: 'service', id: 'ops', fleets: ['f1'] })).toBe('service:f1:ops')
    expect(identityKey({ role: 'viewer', id: 'v', fleets: ['a', 'b'] })).toBe('viewer:a,b:v')
    expect(identityKey({ role: 'anonymous', id: 'x' })).toBe('anonymous:*:x')
  })
})
