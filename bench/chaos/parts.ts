// The real parts every attack of `npm run chaos` runs against: a private Redis, a
// fresh Postgres database, the broker and the api as processes (of this checkout, or of
// another one given with --root, for a before-and-after), and signed clients.
import { spawn } from 'node:child_process'
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
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    this.defer(() => stopChild(child))
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)))
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('Ready to accept connections')) resolve()
      })
    })
    return `redis://127.0.0.1:${port}`
  }

  /** A new database on the local Postgres, dropped afterwards. */
  async database(): Promise<{ url: string; sql: postgres.Sql }> {
    const { url, drop } = await benchDatabase()
    this.defer(drop)
    const sql = postgres(url, { max: 2, onnotice: () => {} })
    this.defer(() => sql.end({ timeout: 1 }))
    return { url, sql }
  }

  async broker(env: Record<string, string> = {}): Promise<BrokerProcess & { url: string }> {
    const broker = await spawnBroker(
      { DEVICE_TOKEN_SECRET: STACK_SECRET, MQTT_RATE_LIMIT: '0', ...env },
      30_000,
      this.root,
    )
    this.defer(() => broker.stop())
    return Object.assign(broker, { url: `mqtt://127.0.0.1:${broker.ports.mqtt}` })
  }

  async api(env: Record<string, string>): Promise<string> {
    const dataDir = mkdtempSync(join(tmpdir(), 'skyline-chaos-'))
    this.defer(() => rmSync(dataDir, { recursive: true, force: true }))
    const { child, url } = await spawnApi({ ...benchApiEnv(dataDir), ...env }, this.root)
    this.defer(() => stopChild(child))
    return url
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
