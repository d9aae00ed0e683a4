import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { decodeJwt } from 'jose'
import { createBroker, startListeners } from '@skyline/broker'
import type { IssuedToken } from '@skyline/auth'
import { issuerTokens } from '../src/credentials.ts'
import type { Device, DeviceTokens } from '../src/credentials.ts'
import { Fleet } from '../src/fleet.ts'
import {
  TEST_AUDIENCE,
  TEST_CLIENT_SECRET,
  startTestIssuer,
  strictOidc,
} from '../../../packages/auth/test/issuer.ts'
import type { TestIssuer } from '../../../packages/auth/test/issuer.ts'
import { SECRET, Watcher, fleetOptions } from './helpers.ts'

const TTL_S = 8

describe('the simulator on tokens from an OpenID Connect issuer', () => {
  let issuer: TestIssuer
  let stop: (() => Promise<void>)[]

  beforeEach(async () => {
    stop = []
    const device = (id: string, role: string) => ({
      id,
      claims: { role, fleet: 'o1' },
      ttlS: TTL_S,
    })
    issuer = await startTestIssuer([
      device('drone-1', 'drone'),
      device('station-1', 'station'),
      device('station-2', 'station'),
    ])
  })
  afterEach(async () => {
    for (const s of stop.reverse()) await s()
    await issuer.close()
  })

  async function broker() {
    const b = await createBroker({
      tokenSecret: SECRET,
      // No grace past exp: a connection still on its first token is closed at its exp.
      oidc: strictOidc(issuer),
    })
    const listening = await startListeners(b, { host: '127.0.0.1', mqttPort: 0 })
    stop.push(() => listening.close())
    return { url: `mqtt://127.0.0.1:${listening.mqtt.port}`, metrics: b.metrics }
  }

  it('renews each device token before it expires and flies on across the expiry, losing nothing', async () => {
    const { url, metrics } = await broker()
    const watcher = await Watcher.start(url, 'o1')
    stop.push(() => watcher.close())
    const fromIssuer = await issuerTokens({
      issuer: issuer.issuer,
      audience: TEST_AUDIENCE,
      clientIdTemplate: '{device}',
      clientSecret: TEST_CLIENT_SECRET,
    })
    const issued: { device: Device; token: IssuedToken }[] = []
    const tokens: DeviceTokens = {
      issue: async (device) => {
        const token = await fromIssuer.issue(device)
        issued.push({ device, token })
        return token
      },
    }
    const fleet = await Fleet.start(
      fleetOptions(url, { fleetId: 'o1', drones: 1, telemetryQos: 1, rateHz: 5, tokens }),
    )
    stop.push(() => fleet.stop())

    const first = issued.find((i) => i.device.id === 'drone-1')!.token
    expect(decodeJwt(first.accessToken)).toMatchObject({ sub: 'drone-1', fleet: 'o1' })
    // Telemetry stamped a second past the first token's exp: the drone is still on.
    const late = await watcher.next(
      (m) =>
        m.topic.endsWith('/drone-1/telemetry') && (m.json.ts as number) > first.expiresAt + 1_000,
      (TTL_S + 10) * 1000,
    )
    expect(late.json.seq).toBeGreaterThan(0)

    const renewed = issued.filter((i) => i.device.id === 'drone-1')
    expect(renewed.length).toBeGreaterThan(1)
    expect(renewed[1]!.token.accessToken).not.toBe(first.accessToken)
    // Every telemetry message (QoS 1) arrived: seq runs without a gap.
    const seqs = watcher.on('drone-1', 'telemetry').map((m) => m.json.seq as number)
    expect(new Set(seqs).size).toBe(Math.max(...seqs) + 1)
    // Each move to a new token was a clean DISCONNECT: no will, no expiry close.
    const statuses = watcher.on('drone-1', 'status').map((m) => m.json)
    expect(statuses.filter((s) => s.online === false)).toEqual([])
    expect(statuses.length).toBeGreaterThan(1) // online again after each move
    const forced = await metrics.disconnects.get()
    expect(forced.values.filter((v) => v.labels.reason === 'token_expired')).toEqual([])
  }, 40_000)

  it('stops at start-up with the issuer words when a device has no client there', async () => {
    const tokens = await issuerTokens({
      issuer: issuer.issuer,
      audience: TEST_AUDIENCE,
      clientIdTemplate: 'nobody-{device}',
      clientSecret: TEST_CLIENT_SECRET,
    })
    await expect(tokens.issue({ id: 'drone-1', role: 'drone', fleetId: 'o1' })).rejects.toThrow(
      /token request of client nobody-drone-1 failed: invalid_client/,
    )
  })
})
