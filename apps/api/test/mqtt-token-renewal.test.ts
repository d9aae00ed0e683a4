import { afterEach, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { MqttClient } from 'mqtt'
import { sql } from 'drizzle-orm'
import type { Database } from '../src/db/client.ts'
import { rowsOf } from '../src/db/partitions.ts'
import {
  TEST_AUDIENCE,
  TEST_CLIENT_SECRET,
  startTestIssuer,
} from '../../../packages/auth/test/issuer.ts'
import type { TestIssuer } from '../../../packages/auth/test/issuer.ts'
import { DATABASES, WAIT, buildApi, connectDrone, startBroker, telemetryAt } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Issue 16, item 2: the api gets its MQTT token from the issuer (client-credentials
// grant) and renews it before it expires; the broker closes a connection at its token's
// exp, so without the renewal the ingest would stop there.

const TTL_S = 12

describe.each(DATABASES)('the ingest on a client-credentials token, %s', (_name, open) => {
  let issuer: TestIssuer | undefined
  let broker: TestBroker | undefined
  let database: Database | undefined
  let api: FastifyInstance | undefined
  let drone: MqttClient | undefined
  let publisher: NodeJS.Timeout | undefined
  afterEach(async () => {
    clearInterval(publisher)
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
      oidc: {
        issuer: issuer.issuer,
        audience: TEST_AUDIENCE,
        roleClaim: 'role',
        fleetClaim: 'fleet',
        clockToleranceS: 0,
      },
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

    const d = await connectDrone(broker.url, 'd-1')
    drone = d
    let seq = 0
    const published: Promise<unknown>[] = []
    publisher = setInterval(() => {
      seq++
      const message = JSON.stringify(telemetryAt(Date.now(), seq))
      published.push(d.publishAsync('fleet/f1/drones/d-1/telemetry', message, { qos: 1 }))
    }, 50)
    const stored = async () => {
      const [row] = rowsOf<{ n: number; seqs: number; last: string }>(
        await database!.db.execute(
          sql`SELECT count(*)::int AS n, count(DISTINCT seq)::int AS seqs, max(ts)::text AS last
              FROM telemetry WHERE drone_id = 'd-1'`,
        ),
      )
      return row!
    }
    // Telemetry sent a second past the first token's exp is stored: the ingest went on.
    await expect
      .poll(async () => new Date((await stored()).last).getTime(), { ...WAIT, timeout: 30_000 })
      .toBeGreaterThan(firstExpiry + 1_000)
    clearInterval(publisher)
    await Promise.all(published)
    await expect.poll(async () => (await stored()).n, WAIT).toBe(seq)
    expect((await stored()).seqs).toBe(seq)

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
      oidc: {
        issuer: issuer.issuer,
        audience: TEST_AUDIENCE,
        roleClaim: 'role',
        fleetClaim: 'fleet',
        clockToleranceS: 0,
      },
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
})
