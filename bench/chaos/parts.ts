// The real parts every attack of `npm run chaos` runs against: a private Redis, a
// fresh Postgres database, the broker and the api as processes (of this checkout, or of
// another one given with --root, for a before-and-after), and signed clients.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connectAsync } from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import postgres from 'postgres'
import { signDeviceToken } from '@skyline/auth'
import type { DeviceClaims } from '@skyline/auth'
import { spawnBroker } from '../../apps/broker/test/broker-process.ts'
import type { BrokerProcess } from '../../apps/broker/test/broker-process.ts'
import { STACK_SECRET, benchApiEnv, benchDatabase, spawnApi, stopChild } from '../stack.ts'

/** What an attack opened, closed in reverse order whatever happens. */
export class Parts {
  private readonly closers: (() => Promise<unknown> | void)[] = []

  constructor(
    /** Another checkout to run the apps of; undefined: this one. */
    readonly root: string | undefined,
  ) {}

  defer(close: () => Promise<unknown> | void): void {
    this.closers.push(close)
  }

  async close(): Promise<void> {
    for (const close of this.closers.splice(0).reverse()) {
      try {
        await close()
      } catch {
        // Closing what is already gone: nothing to do.
      }
    }
  }

  /** A Redis server of the attack's own on a free port: it may be flushed or killed. */
  async redis(): Promise<string> {
    const port = await freePort()
    const child = await startRedis(port, ['--save', '', '--appendonly', 'no'])
    this.defer(() => stopChild(child))
    return `redis://127.0.0.1:${port}`
  }

  /**
   * A Redis of the attack's own that keeps its data in an append-only file: stopped, it
   * can start again on the same port with everything the brokers had stored (sessions,
   * subscriptions, queued messages), as a Redis restarted in production would.
   */
  async persistentRedis(): Promise<RedisServer> {
    const port = await freePort()
    const dir = mkdtempSync(join(tmpdir(), 'skyline-chaos-redis-'))
    this.defer(() => rmSync(dir, { recursive: true, force: true }))
    const args = ['--save', '', '--appendonly', 'yes', '--dir', dir]
    let child = await startRedis(port, args)
    const server: RedisServer = {
      url: `redis://127.0.0.1:${port}`,
      // SIGINT, as SIGTERM: Redis writes the append-only file out before it exits.
      stop: () => stopChild(child),
      async start() {
        child = await startRedis(port, args)
      },
    }
    this.defer(() => server.stop())
    return server
  }

  /** A new database on the local Postgres, dropped afterwards. */
  async database(): Promise<{ url: string; sql: postgres.Sql }> {
    const { url, drop } = await benchDatabase()
    this.defer(drop)
    const sql = postgres(url, { max: 2, onnotice: () => {} })
    this.defer(() => sql.end({ timeout: 1 }))
    return { url, sql }
  }

  async broker(
    env: Record<string, string> = {},
    /** How long it may take to start, ms (a loaded machine). */
    timeoutMs = 30_000,
  ): Promise<BrokerProcess & { url: string }> {
    const broker = await spawnBroker(
      { DEVICE_TOKEN_SECRET: STACK_SECRET, MQTT_RATE_LIMIT: '0', ...env },
      timeoutMs,
      this.root,
    )
    this.defer(() => broker.stop())
    return Object.assign(broker, { url: `mqtt://127.0.0.1:${broker.ports.mqtt}` })
  }

  async api(env: Record<string, string>): Promise<string> {
    return (await this.apiProcess(env)).url
  }

  /** The api as a process (to be killed), stopped at the end if it is still running. */
  async apiProcess(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
    const dataDir = mkdtempSync(join(tmpdir(), 'skyline-chaos-'))
    this.defer(() => rmSync(dataDir, { recursive: true, force: true }))
    const api = await spawnApi({ ...benchApiEnv(dataDir), ...env }, this.root)
    this.defer(() => stopChild(api.child))
    return api
  }

  /** An MQTT client signed in as `claims` (username = sub), resolved on CONNACK. */
  async client(
    url: string,
    claims: DeviceClaims,
    options: IClientOptions = {},
  ): Promise<MqttClient> {
    const client = await connectAsync(url, {
      clientId: claims.sub,
      username: claims.sub,
      password: await signDeviceToken(STACK_SECRET, claims),
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      ...options,
    })
    this.defer(() => client.endAsync(true))
    return client
  }
}

/** A Redis that can be stopped and started again (Parts.persistentRedis). */
export interface RedisServer {
  url: string
  stop(): Promise<void>
  start(): Promise<void>
}

/** `redis-server` on loopback `port`; resolves once it accepts connections. */
async function startRedis(port: number, args: string[]): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)))
      // Read to the end (the listener stays): a full pipe would stop Redis.
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('Ready to accept connections')) resolve()
      })
    })
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  return child
}

export async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  return port
}

/** Polls `check` every `everyMs` until it returns a value, or returns undefined after `timeoutMs`. */
export async function until<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 100,
): Promise<T | undefined> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (performance.now() > deadline) return undefined
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

export const telemetryPayload = (ts: number, seq: number) =>
  JSON.stringify({
    v: 1,
    ts,
    seq,
    lat: 48.85 + seq * 1e-6,
    lon: 2.35,
    altM: 80,
    speedMps: 12,
    headingDeg: 90,
    batteryPct: 80,
    state: 'en_route',
  })

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}
