import { afterEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { MqttClient } from 'mqtt'
import type { Database } from '../src/db/client.ts'
import {
  TEST_AUDIENCE,
  TEST_CLIENT_SECRET,
  startTestIssuer,
  strictOidc,
} from '../../../packages/auth/test/issuer.ts'
import type { TestIssuer } from '../../../packages/auth/test/issuer.ts'
import {
  DATABASES,
  WAIT,
  buildApi,
  connectDrone,
  startBroker,
  storedTelemetry,
  streamTelemetry,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Issue 16, item 2: the api gets its MQTT token from the issuer (client-credentials
// grant) and renews it before it expires; the broker closes a connection at its token's
// exp, so without the renewal the ingest would stop there.

const TTL_S = 8

// The database is not what this is about: PGlite only.
describe.each(DATABASES.slice(0, 1))(
  'the ingest on a client-credentials token, %s',
  (_name, open) => {
    let issuer: TestIssuer | undefined
    let broker: TestBroker | undefined
    let database: Database | undefined
    let api: FastifyInstance | undefined
    let drone: MqttClient | undefined
    let stopStream: (() => Promise<void>) | undefined
    afterEach(async () => {
      await stopStream?.().catch(() => {})
      stopStream = undefined
      await drone?.endAsync()
      await api?.close()
      await database?.close()
      await broker?.close()
      await issuer?.close()
      api = database = broker = issuer = drone = undefined
    })

    it('renews it across its expiry and stores every QoS 1 message once', async () => {
      issuer = await startTestIssuer([
        { id: 'skyline-api', claims: { role: 'service', fleet: '*' }, ttlS: TTL_S },
      ])
      broker = await startBroker({
        // No grace past exp: a connection still on its first token is closed at its exp.
        oidc: strictOidc(issuer),
      })
      database = await open()
      const logs: string[] = []
      const started = Date.now()
      api = await buildApi(
        broker.url,
        database,
        {
          LOG_LEVEL: 'info',
          OIDC_ISSUER: issuer.issuer,
          OIDC_AUDIENCE: TEST_AUDIENCE,
          OIDC_CLIENT_ID: 'skyline-api',
          OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
        },
        { logStream: { write: (line) => void logs.push(line) } },
      )
      const firstExpiry = started + TTL_S * 1000 // at the latest

      drone = await connectDrone(broker.url, 'd-1')
      const stream = streamTelemetry(drone, 'd-1', 50)
      stopStream = () => stream.stop()
      const stored = () => storedTelemetry(database!.db, 'd-1')
      // Telemetry sent a second past the first token's exp is stored: the ingest went on.
      await expect
        .poll(async () => (await stored()).lastMs, { ...WAIT, timeout: 30_000 })
        .toBeGreaterThan(firstExpiry + 1_000)
      await stream.stop()
      await expect
        .poll(stored, WAIT)
        .toEqual({ n: stream.sent, seqs: stream.sent, lastMs: expect.any(Number) as number })

      expect(logs.filter((l) => l.includes('moved to the renewed token')).length).toBeGreaterThan(0)
      const forced = await broker.broker.metrics.disconnects.get()
      expect(forced.values.filter((v) => v.labels.reason === 'token_expired')).toEqual([])
      expect(api.mqtt.subscribed).toBe(true)
    }, 60_000)

    it('opens the ingest session with the renewed token once the first one expired', async () => {
      issuer = await startTestIssuer([
        { id: 'skyline-api', claims: { role: 'service', fleet: '*' }, ttlS: TTL_S },
      ])
      broker = await startBroker({
        oidc: strictOidc(issuer),
      })
      database = await open()
      const started = Date.now()
      const a = await buildApi(broker.url, database, {
        OIDC_ISSUER: issuer.issuer,
        OIDC_AUDIENCE: TEST_AUDIENCE,
        OIDC_CLIENT_ID: 'skyline-api',
        OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
      })
      api = a
      await expect.poll(() => a.mqtt.subscribed, WAIT).toBe(true)
      // Past the first token's exp (the renewals went on meanwhile) ...
      await expect
        .poll(() => Date.now(), { ...WAIT, timeout: 30_000 })
        .toBeGreaterThan(started + (TTL_S + 1) * 1000)
      // ... the instance leaves the ingest session and takes it again, as one does that
      // loses the lead and gains it back, or a follower that takes over.
      await a.mqtt.stopListening({ drop: true })
      a.mqtt.listen()
      const connack = new Promise<number | undefined>((resolve) =>
        a.mqtt.client.on('packetreceive', (p) => {
          if (p.cmd === 'connack') resolve(p.returnCode)
        }),
      )
      // Its first CONNACK accepts it: it connected with the token it holds now, not the
      // first one (the broker refused that with 5, not authorized, until a later renewal).
      expect(await connack).toBe(0)
      await expect.poll(() => a.mqtt.subscribed, WAIT).toBe(true)
    }, 60_000)
  },
)
