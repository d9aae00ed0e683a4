// `npm start`: everything on one machine. Builds the apps, then runs the broker, the
// api (PGlite under DATA_DIR unless DATABASE_URL is set) and a demo fleet from the
// simulator, all on one DATA_DIR so that they share the device-token secret; prints
// the map's URL once the api is ready. Ctrl-C or SIGTERM stops the simulator first (its
// drones say they go offline, and the api records it), then the api, then the broker.
//
// The apps run from their bundles (apps/*/dist, `npm run build`), with plain node: the
// same files the containers run, so `npm start` exercises them on every use, and three
// processes start faster and smaller without tsx compiling TypeScript in each. The
// build is needed anyway for the web map, and takes a few seconds.
//
// package.json runs this with `exec node --import tsx`: no shell stays between npm and
// this process, so npm's forwarded SIGTERM reaches it, and its exit code is npm's.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { dirname, join } from 'node:path'
import { resolveTokenSecret, signDeviceToken } from '@skyline/auth'
import { BROKER_NODE_FLAGS } from '@skyline/broker/node-flags'
import { startApp } from './app-process.ts'
import type { AppProcess } from './app-process.ts'
import { StartConfigError, apiEnvFor, loadStartConfig, simArgs } from './start-config.ts'

const ROOT = dirname(import.meta.dirname)
/** Bounds, ms: the broker to listen, the api to be ready (the first start creates PGlite). */
const BROKER_START_MS = 30_000
const API_READY_MS = 90_000
/** Bound for the demo fleet to connect, ms: 10,000 drones take about a minute on 2 cores. */
const SIM_START_MS = 120_000
/** How long each app may take to stop before it is killed, ms. The simulator lands its drones. */
const STOP_MS: Record<string, number> = { sim: 15_000, api: 10_000, broker: 5_000 }
/** One Ctrl-C arrives twice (the terminal signals the whole process group, npm forwards it again); a press within this is the same press, ms. */
const SAME_PRESS_MS = 1_000

/** Child log lines at this pino level or above are shown: warn, or LOG_LEVEL when set. */
const PINO_LEVELS: Record<string, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Infinity,
}
const shownLevel = PINO_LEVELS[process.env.LOG_LEVEL ?? ''] ?? PINO_LEVELS.warn!

const say = (message: string) => console.log(`[start] ${message}`)
const apps: AppProcess[] = []
let building: ChildProcess | undefined
let stopping: { since: number; done: Promise<never> } | undefined

function printLine(name: string, line: string, stream: 'stdout' | 'stderr'): void {
  const entry = parseLog(line)
  if (entry === undefined) {
    ;(stream === 'stderr' ? console.error : console.log)(`[${name}] ${line}`)
  } else if (entry.level >= shownLevel) {
    const label = Object.keys(PINO_LEVELS).find((k) => PINO_LEVELS[k] === entry.level) ?? 'log'
    const err = entry.err === undefined ? '' : `: ${JSON.stringify(entry.err)}`
    console.log(`[${name}] ${label}: ${entry.msg}${err}`)
  }
}

/** A pino JSON log line, or undefined for plain text. */
function parseLog(line: string): { level: number; msg: string; [k: string]: unknown } | undefined {
  if (!line.startsWith('{')) return undefined
  try {
    const entry = JSON.parse(line) as Record<string, unknown>
    if (typeof entry.level === 'number' && typeof entry.msg === 'string') {
      return entry as { level: number; msg: string }
    }
  } catch {
    // not JSON after all: shown as text
  }
  return undefined
}

function run(
  name: string,
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  nodeFlags: readonly string[] = [],
): AppProcess {
  const app = startApp(
    name,
    join(ROOT, script),
    args,
    env,
    (line, stream) => printLine(name, line, stream),
    nodeFlags,
  )
  apps.push(app)
  // An app that ends on its own ends the whole: its message has been printed above.
  void app.exited.then((code) => {
    if (stopping) return
    say(`${name} exited with code ${code}: stopping the others`)
    void stopAll(1)
  })
  return app
}

/** `npm run build` of every app (the web map's too); its output is shown only on failure. */
function build(): Promise<void> {
  // The npm that runs `npm start`, else the one on PATH.
  const npm = process.env.npm_execpath
  const command = npm === undefined ? 'npm' : process.execPath
  const args = [...(npm === undefined ? [] : [npm]), 'run', 'build', '--workspace', 'apps']
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args, '--if-present'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    building = child
    const output: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => output.push(b))
    child.stderr.on('data', (b: Buffer) => output.push(b))
    child.once('error', reject)
    child.once('exit', (code) => {
      if (code === 0) return resolve()
      process.stderr.write(Buffer.concat(output))
      reject(new Error(`the build failed (exit code ${code})`))
    })
  })
}

/** Polls GET /api/ready until it answers 200: bounded, and given up when the api exits. */
async function apiReady(api: AppProcess, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!api.hasExited && !stopping) {
    const ok = await fetch(url, { signal: AbortSignal.timeout(2_000) }).then(
      (res) => res.ok,
      () => false,
    )
    if (ok) return
    if (Date.now() > deadline) throw new Error(`the api was not ready within ${timeoutMs / 1000} s`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  if (api.hasExited) throw new Error('the api exited while starting')
}

/** Stops the apps in the reverse of their start: simulator, api, broker. Then exits. */
function stopAll(exitCode: number): Promise<never> {
  stopping ??= { since: Date.now(), done: stopInOrder(exitCode) }
  return stopping.done
}

async function stopInOrder(exitCode: number): Promise<never> {
  building?.kill()
  let clean = true
  for (const app of [...apps].reverse()) {
    if (app.hasExited) continue
    const code = await app.stop(STOP_MS[app.name] ?? 5_000)
    say(`${app.name} stopped${code === 0 ? '' : ` (exit code ${code})`}`)
    clean &&= code === 0
  }
  process.exit(exitCode === 0 && !clean ? 1 : exitCode)
}

function onSignal(signal: NodeJS.Signals): void {
  if (stopping === undefined) {
    say(`${signal}: stopping (Ctrl-C again to kill at once)`)
    void stopAll(0)
  } else if (Date.now() - stopping.since > SAME_PRESS_MS) {
    say(`${signal} again: killing`)
    process.exit(130)
  }
}

async function main(): Promise<void> {
  const config = loadStartConfig(process.env)
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  // Last resort: the apps have their own process groups, so nothing else would end them.
  process.on('exit', () => apps.forEach((app) => app.kill()))

  say('building the apps (npm run build)')
  await build()
  if (stopping) return
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: config.dataDir }

  const broker = run('broker', 'apps/broker/dist/main.js', [], env, BROKER_NODE_FLAGS)
  const mqttPort = await broker.waitForLine((line) => {
    const entry = parseLog(line)
    return entry?.msg === 'broker listening' ? (entry.mqtt as number) : undefined
  }, BROKER_START_MS)
  if (stopping) return
  env.MQTT_URL = `mqtt://127.0.0.1:${mqttPort}`

  const api = run('api', 'apps/api/dist/server.js', [], { ...env, ...apiEnvFor(config.sim, env) })
  await apiReady(api, `http://127.0.0.1:${config.httpPort}/api/ready`, API_READY_MS)
  if (stopping) return

  const sim = run('sim', 'apps/drone-sim/dist/main.js', simArgs(config.sim), env)
  // The simulator says "fleet F flying" once every drone is connected: the map is not empty.
  await sim.waitForLine((line) => /^fleet \S+ flying/.test(line) || undefined, SIM_START_MS)
  if (stopping) return
  const { SIM_DRONES, SIM_STATIONS, SIM_TIME_SCALE } = config.sim
  say(
    `demo fleet: ${SIM_DRONES} drones, ${SIM_STATIONS} stations, time scale ${SIM_TIME_SCALE}; data in ${config.dataDir}`,
  )
  say(`Skyline is running: open http://localhost:${config.httpPort}/ (Ctrl-C stops it)`)
  // The map signs in with a token (issue 16); the demo hands one over in the URL's
  // fragment (never sent to the server; the page keeps it for the tab): a service token
  // of every fleet, so the map shows the whole demo and can dispatch.
  const secret = resolveTokenSecret(env.DEVICE_TOKEN_SECRET || undefined, config.dataDir)
  const token = await signDeviceToken(
    secret,
    { role: 'service', sub: 'ops-demo' },
    OPERATOR_TOKEN_S,
  )
  say(
    `signed in (operator of every fleet, 24 h; keep it to yourself): http://localhost:${config.httpPort}/#token=${token}`,
  )
}

/** Lifetime of the demo's operator token, s: a day. */
const OPERATOR_TOKEN_S = 24 * 3600

main().catch((err: unknown) => {
  if (stopping) return // the apps' own exits during a stop are not failures
  if (err instanceof StartConfigError) console.error(`[start] ${err.message}`)
  else console.error(`[start] ${err instanceof Error ? err.message : String(err)}`)
  void stopAll(1)
})
