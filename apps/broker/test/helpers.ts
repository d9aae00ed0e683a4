import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterEach } from 'vitest'
import { connectAsync } from 'mqtt'
import type { IClientOptions, MqttClient, Packet } from 'mqtt'
import { signDeviceToken } from '@skyline/auth'
import type { DeviceClaims } from '@skyline/auth'
import { createBroker, startListeners } from '../src/index.ts'
import type { BrokerOptions, ListenOptions, Listening, SkylineBroker } from '../src/index.ts'
import { RawClient } from './raw-client.ts'

export const SECRET = 'test-secret-that-is-at-least-32-characters-long'

export interface TestBroker {
  broker: SkylineBroker
  listening: Listening
  url: string
  /** A client with a fresh token for these claims; closed by close(). */
  connect(claims: DeviceClaims, options?: IClientOptions): Promise<MqttClient>
  close(): Promise<void>
}

/** A real broker on ephemeral loopback ports, with clients that close with it. */
export async function startTestBroker(
  options: Partial<BrokerOptions> = {},
  listen: Partial<ListenOptions> = {},
): Promise<TestBroker> {
  const broker = await createBroker({ tokenSecret: SECRET, ...options })
  const listening = await startListeners(broker, {
    host: '127.0.0.1',
    mqttPort: 0,
    metricsPort: 0,
    ...listen,
  })
  const url = `mqtt://127.0.0.1:${listening.mqtt.port}`
  const clients: MqttClient[] = []
  return {
    broker,
    listening,
    url,
    async connect(claims, opts) {
      const client = await connectAs(url, claims, opts)
      clients.push(client)
      return client
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true)))
      await listening.close()
    },
  }
}

/** Client options that authenticate as `claims` (username = sub), never reconnecting by itself. */
export async function optionsFor(
  claims: DeviceClaims,
  options: IClientOptions = {},
): Promise<IClientOptions> {
  return {
    clientId: claims.sub,
    username: claims.sub,
    password: await signDeviceToken(SECRET, claims),
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...options,
  }
}

/** Connects as `claims` and resolves on CONNACK. */
export async function connectAs(
  url: string,
  claims: DeviceClaims,
  options: IClientOptions = {},
): Promise<MqttClient> {
  return connectAsync(url, await optionsFor(claims, options))
}

export interface Received {
  topic: string
  payload: string
  packet: Packet & { retain?: boolean; qos?: number }
}

/** The next message on `client` whose topic satisfies `match`, or an error after `timeoutMs`. */
export function nextMessage(
  client: MqttClient,
  match: (topic: string) => boolean = () => true,
  timeoutMs = 5_000,
): Promise<Received> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage)
      reject(new Error(`no message within ${timeoutMs} ms`))
    }, timeoutMs)
    function onMessage(topic: string, payload: Buffer, packet: Packet) {
      if (!match(topic)) return
      clearTimeout(timer)
      client.off('message', onMessage)
      resolve({ topic, payload: payload.toString(), packet })
    }
    client.on('message', onMessage)
  })
}

/** Collects every message on `client` into an array, from now on. */
export function collect(client: MqttClient): Received[] {
  const seen: Received[] = []
  client.on('message', (topic, payload, packet) =>
    seen.push({ topic, payload: payload.toString(), packet }),
  )
  return seen
}

/** Resolves when the broker has closed `client`'s connection, or rejects after `timeoutMs`. */
export function closedWithin(client: MqttClient, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`connection still open after ${timeoutMs} ms`)),
      timeoutMs,
    )
    client.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** The machine's Redis (CI has one). Shared: tests keep to their own cluster name. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A cluster name of its own for one test file's run, so runs never see each other's keys. */
export const testClusterName = (label: string) => `test-${label}-${randomBytes(4).toString('hex')}`

/** Deletes every key of `cluster` (never the whole database: the Redis is shared). */
export async function dropClusterKeys(cluster: string, url = TEST_REDIS_URL): Promise<void> {
  const redis = new Redis(url)
  try {
    for await (const keys of redis.scanStream({ match: `${cluster}:*`, count: 1_000 }))
      if ((keys as string[]).length > 0) await redis.del(...(keys as string[]))
  } finally {
    redis.disconnect()
  }
}

/**
 * A broker per test and raw connections to it, all closed after each test: for the
 * cases a client library will not produce. Call at the top of a test file.
 */
export function rawBrokerPerTest(): {
  start: (options?: Partial<BrokerOptions>) => Promise<TestBroker>
  raw: (t: TestBroker) => Promise<RawClient>
} {
  let tb: TestBroker | undefined
  const raws: RawClient[] = []
  afterEach(async () => {
    for (const r of raws.splice(0)) r.destroy()
    await tb?.close()
    tb = undefined
  })
  return {
    start: async (options = {}) => {
      tb = await startTestBroker(options)
      return tb
    },
    raw: async (t) => {
      const r = await RawClient.open(t.listening.mqtt.port)
      raws.push(r)
      return r
    },
  }
}
