// The whole stack as users run it, each app its own process on ephemeral ports: the
// bundled broker, the api (on a fresh database of the local Postgres, or on PGlite),
// and optionally a simulated fleet. For benchmarks that need the path end to end.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { profileArgs, sample, spawnBroker } from '../apps/broker/test/broker-process.ts'
import { signDeviceToken } from '@skyline/auth'
import type { BrokerProcess } from '../apps/broker/test/broker-process.ts'

const TSX_LOADER = new URL('../node_modules/tsx/dist/loader.mjs', import.meta.url).href
const API_MAIN = fileURLToPath(new URL('../apps/api/src/server.ts', import.meta.url))
const SIM_MAIN = fileURLToPath(new URL('../apps/drone-sim/src/main.ts', import.meta.url))
export const STACK_SECRET = 'bench-secret-that-is-at-least-32-characters'

/**
 * A service token of every fleet, signed with STACK_SECRET: what the benches' REST
 * reads and live clients sign in with (every /api/ path but the probes needs one).
 */
export const benchToken = (): Promise<string> =>
  signDeviceToken(STACK_SECRET, { role: 'service', sub: 'bench' })

/** The live stream's first message, signing in with benchToken. */
export const liveAuth = async (): Promise<string> =>
  JSON.stringify({ type: 'auth', token: await benchToken() })
/** The Postgres server the benchmarks create their databases on. */
const POSTGRES_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

export interface StackOptions {
  database: 'postgres' | 'pglite'
  /** A simulated fleet to start, or none. */
  fleet?: { drones: number; stations: number; rateHz: number; radiusKm: number }
  /** Extra environment for the api. */
  apiEnv?: Record<string, string>
  /** Another checkout to run the broker and api of. Default this one. */
  root?: string
  signal: AbortSignal
  log: (line: string) => void
}

export interface Stack {
  broker: BrokerProcess
  api: ChildProcess
  apiUrl: string
  mqttUrl: string
  /** The api's fresh Postgres database; undefined on PGlite (which the api holds alone). */
  databaseUrl: string | undefined
  sim: ChildProcess | undefined
  stop(): Promise<void>
}

export async function startStack(o: StackOptions): Promise<Stack> {
  const cleanups: (() => Promise<void> | void)[] = []
  const stop = async () => {
    for (const fn of cleanups.reverse()) await fn()
  }
  try {
    const broker = await spawnBroker(
      { DEVICE_TOKEN_SECRET: STACK_SECRET, MQTT_RATE_LIMIT: '0' },
      undefined,
      o.root,
    )
    cleanups.push(() => broker.stop().then(() => undefined))
    const mqttUrl = `mqtt://127.0.0.1:${broker.ports.mqtt}`

    const dataDir = mkdtempSync(join(tmpdir(), 'skyline-bench-'))
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }))
    const env: Record<string, string> = { ...benchApiEnv(dataDir), MQTT_URL: mqttUrl, ...o.apiEnv }
    if (o.database === 'postgres') {
      const database = await benchDatabase()
      cleanups.push(database.drop)
      env.DATABASE_URL = database.url
    }
    const { child: api, url: apiUrl } = await spawnApi(env, o.root)
    cleanups.push(() => stopChild(api))

    let sim: ChildProcess | undefined
    if (o.fleet !== undefined) {
      const f = o.fleet
      sim = spawn(
        process.execPath,
        [
          '--import',
          TSX_LOADER,
          SIM_MAIN,
          ...['--drones', String(f.drones), '--stations', String(f.stations)],
          ...['--radius-km', String(f.radiusKm), '--rate', String(f.rateHz), '--demand', '0'],
        ],
        {
          env: { ...process.env, MQTT_URL: mqttUrl, DEVICE_TOKEN_SECRET: STACK_SECRET },
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      )
      const child = sim
      cleanups.push(() => stopChild(child))
      const devices = f.drones + f.stations
      const started = performance.now()
      // The broker's connection gauge: the simulator has no event to wait on.
      while (sample(await broker.metrics(), 'skyline_broker_connections') < devices + 1) {
        if (sim.exitCode !== null) throw new Error(`simulator exited with ${sim.exitCode}`)
        if (performance.now() - started > 300_000) throw new Error('fleet not connected in 300 s')
        await sleep(250, undefined, { signal: o.signal })
      }
      o.log(
        `stack: ${devices} devices connected in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      )
    }
    return { broker, api, apiUrl, mqttUrl, databaseUrl: env.DATABASE_URL, sim, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

/** The api's environment in a benchmark: an ephemeral loopback port, its own DATA_DIR, the bench secret, no tiles. */
export function benchApiEnv(dataDir: string): Record<string, string> {
  return {
    HTTP_PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    DEVICE_TOKEN_SECRET: STACK_SECRET,
    MAP_TILE_URL: 'none',
    LOG_LEVEL: 'info',
  }
}

/** A new database on the local Postgres (DATABASE_URL's server), and how to drop it. */
export async function benchDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `skyline_bench_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`
  const admin = postgres(POSTGRES_URL, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE ${name}`)
  const url = new URL(POSTGRES_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin.end()
    },
  }
}

/**
 * `npm run api` in its own process; resolves with its URL from its "listening" log line.
 * `root`: another checkout to run the api of (`npm run chaos -- --root DIR`).
 */
export async function spawnApi(
  env: Record<string, string>,
  root?: string,
): Promise<{ child: ChildProcess; url: string }> {
  const main = root === undefined ? API_MAIN : `${root}/apps/api/src/server.ts`
  // SKYLINE_CPU_PROF_DIR: a V8 CPU profile of the api too (see broker-process.ts).
  const child = spawn(process.execPath, [...profileArgs(), '--import', TSX_LOADER, main], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const stderr: string[] = []
  createInterface({ input: child.stderr }).on('line', (l) => stderr.push(l))
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`api did not start: ${stderr.join('\n')}`)),
      60_000,
    )
    child.once('exit', (code) => reject(new Error(`api exited with ${code}: ${stderr.join('\n')}`)))
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)
      if (m !== null) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
  })
  return { child, url }
}

/** SIGINT, then SIGKILL if it has not exited within 10 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGINT')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}
