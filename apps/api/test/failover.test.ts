import { afterEach, describe, expect, it, vi } from 'vitest'
import { fileURLToPath } from 'node:url'
import type { MqttClient } from 'mqtt'
import { startApp } from '../../../scripts/app-process.ts'
import type { AppProcess } from '../../../scripts/app-process.ts'
import {
  SECRET,
  connectDrone,
  freshPostgres,
  startBroker,
  storedTelemetry,
  streamTelemetry,
} from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Issue 17, item 2: two api instances on one Postgres and one broker; one leads (the
// ingest session, the dispatcher), and when it is killed (SIGKILL: no goodbye, its lease
// just lapses) the other takes the same persistent session over, losing no QoS 1 message.

const SERVER = fileURLToPath(new URL('../src/server.ts', import.meta.url))
const LEASE_S = 2
const url = process.env.DATABASE_URL

describe.runIf(url !== undefined && url !== '')('two api instances (needs DATABASE_URL)', () => {
  const apps: AppProcess[] = []
  let broker: TestBroker | undefined
  let drop: (() => Promise<void>) | undefined
  let drone: MqttClient | undefined
  let stopStream: (() => Promise<void>) | undefined
  afterEach(async () => {
    await stopStream?.().catch(() => {})
    stopStream = undefined
    await drone?.endAsync(true)
    await Promise.all(apps.splice(0).map((a) => a.stop(5_000)))
    await broker?.close()
    await drop?.()
  })

  it('fails over to the survivor when the leader is killed, losing no QoS 1 message', async () => {
    broker = await startBroker()
    const database = await freshPostgres(url!) // migrated already: the instances find it so
    drop = () => database.close() // and dropped
    const start = async (id: string) => {
      const logs: string[] = []
      const app = startApp(
        `api-${id}`,
        SERVER,
        [],
        {
          ...process.env,
          API_INSTANCE_ID: id,
          LEADER_LEASE_S: String(LEASE_S),
          HTTP_PORT: '0',
          HOST: '127.0.0.1',
          MQTT_URL: broker!.url,
          DATABASE_URL: database.url,
          DEVICE_TOKEN_SECRET: SECRET,
          INGEST_BATCH_DELAY_MS: '20',
          LOG_LEVEL: 'info',
        },
        (line) => void logs.push(line),
        ['--import', 'tsx'],
      )
      apps.push(app)
      const port = await app.waitForLine(
        (l) => /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(l)?.[1],
        30_000,
      )
      return { app, logs, base: `http://127.0.0.1:${port}` }
    }
    const ready = async (base: string) =>
      (await fetch(`${base}/api/ready`)).json() as Promise<{ ready: boolean; role: string }>
    const [a, b] = await Promise.all([start('a'), start('b')])
    const roles = async () => [(await ready(a.base)).role, (await ready(b.base)).role].sort()
    await vi.waitFor(async () => expect(await roles()).toEqual(['follower', 'leader']), {
      timeout: 20_000,
      interval: 100,
    })
    const [leader, survivor] = (await ready(a.base)).role === 'leader' ? [a, b] : [b, a]
    await vi.waitFor(async () => expect((await ready(leader.base)).ready).toBe(true), {
      timeout: 10_000,
      interval: 50,
    })

    // A drone streams QoS 1 telemetry throughout.
    drone = await connectDrone(broker.url, 'd-1')
    const stream = streamTelemetry(drone, 'd-1', 20)
    stopStream = () => stream.stop()
    const stored = () => storedTelemetry(database.db, 'd-1')
    await vi.waitFor(async () => expect((await stored()).n).toBeGreaterThan(50), {
      timeout: 10_000,
      interval: 50,
    })

    leader.app.kill()
    const killedAt = Date.now()
    await leader.app.exited
    await vi.waitFor(async () => expect((await ready(survivor.base)).role).toBe('leader'), {
      timeout: (LEASE_S + 10) * 1000,
      interval: 50,
    })
    const takeoverMs = Date.now() - killedAt
    // The lease lapses within LEADER_LEASE_S; the survivor tries every third of it.
    expect(takeoverMs).toBeLessThan((LEASE_S + LEASE_S / 3 + 2) * 1000)
    await vi.waitFor(async () => expect((await ready(survivor.base)).ready).toBe(true), {
      timeout: 10_000,
      interval: 50,
    })
    const atTakeover = stream.sent
    await vi.waitFor(() => expect(stream.sent).toBeGreaterThan(atTakeover + 50), {
      timeout: 10_000,
      interval: 20,
    })
    await stream.stop()

    // Every message the broker acknowledged to the drone is stored, once.
    await vi.waitFor(
      async () => expect(await stored()).toMatchObject({ n: stream.sent, seqs: stream.sent }),
      {
        timeout: 15_000,
        interval: 100,
      },
    )
    expect(survivor.logs.some((l) => l.includes('"sessionPresent":true'))).toBe(true)
  }, 90_000)
})
