// `npm install` then `npm start`, as a new user does it: in a fresh clone of the
// committed repository, on free ports and a temporary DATA_DIR.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { ROOT } from './deploy-files.ts'
import { freePorts, npmStart, processesUsing } from './npm-start.ts'
import type { NpmStart } from './npm-start.ts'

const run = promisify(execFile)
const RUNNING = /Skyline is running: open (http:\/\/localhost:(\d+)\/)/
/** The link `npm start` prints that signs the map in: its token is every fleet's operator. */
const SIGNED_IN = /\/#token=(\S+)/
/** Build and start, bounded: the first start also creates PGlite's database. */
const START_MS = 120_000
/** Stopping the three apps, each within its own bound. */
const STOP_MS = 45_000

interface DroneView {
  id: string
  online: boolean
  state: string
  offlineReason: string | null
}

const base = mkdtempSync(join(tmpdir(), 'skyline-start-'))
const clone = join(base, 'skyline')
let started: NpmStart | undefined

async function ports() {
  const [http, mqtt, ws, metrics] = await freePorts(4)
  return {
    HTTP_PORT: String(http),
    MQTT_PORT: String(mqtt),
    MQTT_WS_PORT: String(ws),
    BROKER_METRICS_PORT: String(metrics),
  }
}

function start(env: Record<string, string>): NpmStart {
  started = npmStart(clone, env)
  return started
}

const getJson = async <T>(url: string, token: string) =>
  (await (await fetch(url, { headers: { authorization: `Bearer ${token}` } })).json()) as T

/** GET /api/fleet with `token` until `done` holds, bounded. */
const fleetUntil = (
  api: string,
  token: string,
  done: (drones: DroneView[]) => boolean,
  timeoutMs = 15_000,
) =>
  vi.waitFor(
    async () => {
      const { drones } = await getJson<{ drones: DroneView[] }>(`${api}/api/fleet`, token)
      expect(done(drones), JSON.stringify(drones)).toBe(true)
      return drones
    },
    { timeout: timeoutMs, interval: 100 },
  )

beforeAll(async () => {
  await run('git', ['clone', '--quiet', ROOT, clone])
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], {
    cwd: clone,
    maxBuffer: 16 * 1024 * 1024,
  })
})

afterEach(() => {
  // A failed test must leave nothing running: the apps have process groups of their own.
  if (started !== undefined) {
    try {
      process.kill(-started.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  for (const { pid } of processesUsing(base)) process.kill(pid, 'SIGKILL')
  started = undefined
})

afterAll(() => rmSync(base, { recursive: true, force: true }))

describe('npm start in a fresh clone', () => {
  it('runs the demo fleet, stops it in order on Ctrl-C, and finds it again on the next start', async () => {
    const dataDir = join(base, 'data')
    const env = { ...(await ports()), DATA_DIR: dataDir, SIM_DRONES: '5', SIM_STATIONS: '3' }
    const api = `http://127.0.0.1:${env.HTTP_PORT}`

    const first = start(env)
    const [, url, port] = await first.waitFor(RUNNING, START_MS)
    expect(url).toBe(`http://localhost:${env.HTTP_PORT}/`)
    expect(port).toBe(env.HTTP_PORT)
    const commands = processesUsing(dataDir).map((p) => p.command)
    for (const bundle of ['broker/dist/main.js', 'api/dist/server.js', 'drone-sim/dist/main.js']) {
      expect(
        commands.some((c) => c.includes(`apps/${bundle}`)),
        bundle,
      ).toBe(true)
    }

    // The link it prints signs in: its token reads (and, below, operates).
    const [, token] = await first.waitFor(SIGNED_IN, 5_000)
    expect((await fetch(`${api}/api/fleet`)).status).toBe(401)
    const drones = await fleetUntil(api, token!, (d) => d.length === 5 && d.every((x) => x.online))
    expect(drones.map((d) => d.online)).toEqual([true, true, true, true, true])
    const ids = drones.map((d) => d.id).sort()

    // The map: the page and the script it loads.
    const page = await fetch(`${api}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    const script = /<script[^>]+src="([^"]+)"/.exec(await page.text())?.[1]
    expect(script).toBeDefined()
    expect((await fetch(new URL(script!, api))).status).toBe(200)

    // The operator link it prints works: its token may post a delivery.
    const stations = await getJson<{ stations: { id: string; fleetId: string }[] }>(
      `${api}/api/stations`,
      token!,
    )
    const [a, b] = stations.stations
    const posted = await fetch(`${api}/api/deliveries`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        fleet: a!.fleetId,
        pickupStationId: a!.id,
        dropoffStationId: b!.id,
        payloadKg: 1,
      }),
    })
    expect(posted.status).toBe(201)

    first.ctrlC()
    expect(await first.exit(STOP_MS)).toBe(0)
    const out = first.output()
    const order = ['sim stopped', 'api stopped', 'broker stopped'].map((s) => out.indexOf(s))
    expect(order.every((i) => i >= 0)).toBe(true)
    expect(order).toEqual([...order].sort((a, b) => a - b))
    expect(processesUsing(dataDir)).toEqual([])

    // No simulated drone this time: what the map shows comes from DATA_DIR alone. The
    // drones said they were going offline, as the simulator was stopped first.
    const second = start({ ...env, SIM_DRONES: '0' })
    await second.waitFor(RUNNING, START_MS)
    const [, again] = await second.waitFor(SIGNED_IN, 5_000)
    const known = await fleetUntil(api, again!, () => true)
    expect(known.map((d) => d.id).sort()).toEqual(ids)
    for (const drone of known) {
      expect(drone).toMatchObject({ online: false, state: 'offline', offlineReason: 'shutdown' })
    }

    process.kill(second.pid, 'SIGTERM') // as a service manager stops it: npm alone
    expect(await second.exit(STOP_MS)).toBe(0)
    expect(processesUsing(dataDir)).toEqual([])
  })

  it('stops with a message naming HTTP_PORT when that port is taken, leaving nothing running', async () => {
    const dataDir = join(base, 'taken')
    const env = { ...(await ports()), DATA_DIR: dataDir }
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(Number(env.HTTP_PORT), '127.0.0.1', resolve))
    try {
      const npm = start(env)
      expect(await npm.exit(START_MS)).not.toBe(0)
      expect(npm.output()).toContain(
        `port ${env.HTTP_PORT} is already in use: set HTTP_PORT to a free port`,
      )
      expect(npm.output()).toContain('broker stopped')
      expect(processesUsing(dataDir)).toEqual([])
    } finally {
      taken.close()
    }
  })

  it('refuses a bad SIM_DRONES with a message naming it, before building anything', async () => {
    const dataDir = join(base, 'bad-sim')
    const npm = start({ ...(await ports()), DATA_DIR: dataDir, SIM_DRONES: 'a dozen' })
    expect(await npm.exit(30_000)).not.toBe(0)
    expect(npm.output()).toMatch(/SIM_DRONES: /)
    expect(npm.output()).not.toContain('building')
  })
})
