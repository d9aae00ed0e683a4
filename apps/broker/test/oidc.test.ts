import { decodeJwt } from 'jose'
import { connectAsync } from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { signDeviceToken } from '@skyline/auth'
import {
  OTHER_AUDIENCE,
  TEST_AUDIENCE,
  startTestIssuer,
} from '../../../packages/auth/test/issuer.ts'
import type { TestIssuer } from '../../../packages/auth/test/issuer.ts'
import { SECRET, closedWithin, collect, nextMessage, startTestBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Issue 16: with OIDC_ISSUER the broker takes an identity server's access tokens beside
// its own device tokens (username = the token's sub, password = the token), and closes
// a connection when its token expires (MQTT 3.1.1 has no re-authentication). The
// issuer is a real OpenID Provider (oidc-provider) on an ephemeral port; its tokens
// come from its token endpoint with the client-credentials grant.

const CLIENTS = [
  { id: 'd1', claims: { role: 'drone', fleet: 'f1' } },
  { id: 'ops', claims: { role: 'service', fleet: 'f1' } },
  { id: 'watch', claims: { role: 'viewer', fleet: ['f1', 'f2'] } },
  { id: 'root', claims: { role: 'admin' } },
  { id: 'brief', claims: { role: 'viewer', fleet: 'f1' }, ttlS: 2 },
]

let issuer: TestIssuer
let elsewhere: TestIssuer
let tb: TestBroker
let watcher: MqttClient
const opened: MqttClient[] = []

beforeAll(async () => {
  issuer = await startTestIssuer(CLIENTS)
  elsewhere = await startTestIssuer(CLIENTS)
  // No clock skew, so that an expiry is observed at the token's exp.
  tb = await startTestBroker({
    oidc: { issuer: issuer.issuer, audience: TEST_AUDIENCE, clockToleranceS: 0 },
  })
  watcher = await tb.connect({ role: 'service', sub: 'watcher' })
  await watcher.subscribeAsync('fleet/#', { qos: 1 })
})
afterEach(() => {
  vi.useRealTimers()
})
afterAll(async () => {
  await Promise.all(opened.map((c) => c.endAsync(true)))
  await tb.close()
  await issuer.close()
  await elsewhere.close()
})

/** Connects with an access token: username = its sub, password = the token. */
async function connectWith(token: string, options: IClientOptions = {}): Promise<MqttClient> {
  const sub = decodeJwt(token).sub!
  const client = await connectAsync(tb.url, {
    clientId: `${sub}-${opened.length}`,
    username: sub,
    password: token,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...options,
  })
  opened.push(client)
  return client
}

const authFailures = (reason: string) =>
  tb.broker.metrics.value(tb.broker.metrics.authFailures, { reason })
const refused = (action: string) => tb.broker.metrics.value(tb.broker.metrics.refused, { action })

describe('OIDC access tokens on the broker', () => {
  it('lets a drone in on a client-credentials token, publishing in its fleet and not outside', async () => {
    const drone = await connectWith(await issuer.token('d1'))
    const seen = collect(watcher)
    const before = await refused('publish')
    await drone.publishAsync('fleet/f2/drones/d1/telemetry', 'outside', { qos: 1 })
    expect(await refused('publish')).toBe(before + 1)
    const inside = nextMessage(watcher, (t) => t === 'fleet/f1/drones/d1/telemetry')
    await drone.publishAsync('fleet/f1/drones/d1/telemetry', 'inside', { qos: 1 })
    expect((await inside).payload).toBe('inside')
    expect(seen.map((m) => m.payload)).toEqual(['inside'])
  })

  it("keeps a service to its token's fleet, and lets an admin command every fleet", async () => {
    const ops = await connectWith(await issuer.token('ops'))
    const before = await refused('publish')
    await ops.publishAsync('fleet/f2/drones/d1/commands', '{}', { qos: 1 })
    expect(await refused('publish')).toBe(before + 1)
    await expect(ops.subscribeAsync('fleet/#', { qos: 1 })).rejects.toMatchObject({
      packet: { granted: [128] },
    })
    const root = await connectWith(await issuer.token('root'))
    const command = nextMessage(watcher, (t) => t === 'fleet/f2/drones/d1/commands')
    await root.publishAsync('fleet/f2/drones/d1/commands', 'from-admin', { qos: 1 })
    expect((await command).payload).toBe('from-admin')
  })

  it('lets a viewer of two fleets subscribe to each, and to no third', async () => {
    const viewer = await connectWith(await issuer.token('watch'))
    const granted = await viewer.subscribeAsync(['fleet/f1/#', 'fleet/f2/drones/+/telemetry'], {
      qos: 1,
    })
    expect(granted.map((g) => g.qos)).toEqual([1, 1])
    await expect(viewer.subscribeAsync('fleet/f3/#', { qos: 1 })).rejects.toMatchObject({
      packet: { granted: [128] },
    })
  })

  it('refuses a token of another issuer, for another audience, or signed by another key', async () => {
    const before = await authFailures('token_invalid')
    const tokens = [
      await elsewhere.token('d1'),
      await issuer.token('d1', OTHER_AUDIENCE),
      await issuer.forge({ sub: 'd1', role: 'drone', fleet: 'f1' }),
    ]
    for (const token of tokens) {
      await expect(connectWith(token)).rejects.toMatchObject({ code: 5 })
    }
    expect(await authFailures('token_invalid')).toBe(before + 3)
  })

  it("refuses a username that is not the token's sub", async () => {
    const token = await issuer.token('d1')
    await expect(
      connectWith(token, { username: 'd2', clientId: 'd2-impostor' }),
    ).rejects.toMatchObject({ code: 5 })
    expect(await authFailures('username_mismatch')).toBeGreaterThan(0)
  })

  it('refuses an expired token', async () => {
    const token = await issuer.token('d1')
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(decodeJwt(token).exp! * 1000 + 1_000)
    const before = await authFailures('token_expired')
    await expect(connectWith(token)).rejects.toMatchObject({ code: 5 })
    expect(await authFailures('token_expired')).toBe(before + 1)
  })

  it('closes a connection when its OIDC token expires, not before', async () => {
    const token = await issuer.token('brief') // 2 s
    const expMs = decodeJwt(token).exp! * 1000
    const viewer = await connectWith(token)
    const before = await tb.broker.metrics.value(tb.broker.metrics.disconnects, {
      reason: 'token_expired',
    })
    await closedWithin(viewer, expMs - Date.now() + 2_000)
    // Node may fire a timer up to 1 ms early; the exp itself is whole seconds.
    expect(Date.now()).toBeGreaterThanOrEqual(expMs - 2)
    expect(
      await tb.broker.metrics.value(tb.broker.metrics.disconnects, { reason: 'token_expired' }),
    ).toBe(before + 1)
  })

  it('closes a connection when its device token expires', async () => {
    const claims = { role: 'viewer', sub: 'v-brief', fleet: 'f1' } as const
    const token = await signDeviceToken(SECRET, claims, 1)
    const expMs = decodeJwt(token).exp! * 1000
    const viewer = await connectWith(token)
    await closedWithin(viewer, expMs - Date.now() + 2_000)
    expect(Date.now()).toBeGreaterThanOrEqual(expMs - 2)
  })

  it('answers server unavailable while the issuer cannot be reached', async () => {
    const gone = await startTestIssuer(CLIENTS)
    const token = await gone.token('d1')
    await gone.close()
    const orphan = await startTestBroker({
      oidc: { issuer: gone.issuer, audience: TEST_AUDIENCE },
    })
    try {
      await expect(
        connectAsync(orphan.url, {
          clientId: 'd1',
          username: 'd1',
          password: token,
          reconnectPeriod: 0,
        }),
      ).rejects.toMatchObject({ code: 3 })
    } finally {
      await orphan.close()
    }
  })
})
