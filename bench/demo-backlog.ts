// `npm run bench:demo`: does the demo keep up? Runs `npm start` as a user would (its own
// DATA_DIR and ports), time-scaled, and every 5 simulated minutes counts the deliveries
// by status over the REST api. A demo that keeps up has a backlog (requested + in flight)
// that stays bounded; one whose demand exceeds what its fleet can fly grows without end.
//
//   npm run bench:demo [-- --hours H] [--scale X]
//
// Every other variable passes through to `npm start` (SIM_DRONES, SIM_STATIONS, SIM_DEMAND).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { DELIVERY_STATUSES, FINISHED_STATUSES } from '@skyline/schemas'
import type { DeliveryStatus } from '@skyline/schemas'

const ROOT = new URL('..', import.meta.url).pathname
/** Simulated minutes between samples. */
const SAMPLE_EVERY_MIN = 5
/** Bound for `npm start` to build and bring the fleet up, ms. */
const START_MS = 240_000
/** Assigned to a drone and not finished. */
const IN_FLIGHT = DELIVERY_STATUSES.filter(
  (s) => s !== 'requested' && !FINISHED_STATUSES.includes(s),
)

const { values } = parseArgs({
  options: { hours: { type: 'string', default: '3' }, scale: { type: 'string', default: '60' } },
})
const hours = Number(values.hours)
const scale = Number(values.scale)
if (!(hours > 0) || !(scale > 0)) throw new Error('--hours and --scale must be positive numbers')

const dataDir = mkdtempSync(join(tmpdir(), 'skyline-demo-'))
const httpPort = await freePort()
const start = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
  cwd: ROOT,
  env: {
    ...process.env,
    SIM_TIME_SCALE: String(scale),
    DATA_DIR: dataDir,
    HTTP_PORT: String(httpPort),
    HOST: '127.0.0.1',
    MQTT_PORT: '0',
    MQTT_WS_PORT: '0',
    MQTTS_PORT: '0',
    BROKER_METRICS_PORT: '0',
    MAP_TILE_URL: 'none',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
})
const lines = createInterface({ input: start.stdout })
try {
  // The link npm start prints after it is running signs in: REST needs its token.
  const token = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('npm start not ready in time')), START_MS)
    start.once('exit', (code) => reject(new Error(`npm start exited with ${code}`)))
    lines.on('line', (line) => {
      const signedIn = /\/#token=(\S+)/.exec(line)
      if (signedIn === null)
        console.log(line) // not the line with an operator token
      else {
        clearTimeout(timer)
        resolve(signedIn[1]!)
      }
    })
  })
  const startedAt = performance.now()
  const simMin = () => ((performance.now() - startedAt) / 60_000) * scale
  console.log(`\n| sim min | requested | in flight | unfinished | completed | failed |`)
  console.log(`| ------: | --------: | --------: | ---------: | --------: | -----: |`)
  for (let k = 1; k * SAMPLE_EVERY_MIN <= hours * 60; k++) {
    const wait = ((k * SAMPLE_EVERY_MIN) / scale) * 60_000 - (performance.now() - startedAt)
    await sleep(Math.max(0, wait))
    const n = await counts(`http://127.0.0.1:${httpPort}`, token)
    const inFlight = IN_FLIGHT.reduce((sum, s) => sum + n[s], 0)
    const row = [
      simMin().toFixed(0),
      n.requested,
      inFlight,
      n.requested + inFlight,
      n.completed,
      n.failed,
    ]
    console.log(`| ${row.join(' | ')} |`)
  }
} finally {
  if (start.exitCode === null && start.signalCode === null) {
    const exited = once(start, 'exit')
    start.kill('SIGTERM')
    await exited
  }
  rmSync(dataDir, { recursive: true, force: true })
}

/**
 * Deliveries per status, paging through GET /api/deliveries. One status after another:
 * a delivery that moves on between two reads may count twice or not at all.
 */
async function counts(base: string, token: string): Promise<Record<DeliveryStatus, number>> {
  const out = Object.fromEntries(DELIVERY_STATUSES.map((s) => [s, 0])) as Record<
    DeliveryStatus,
    number
  >
  for (const status of DELIVERY_STATUSES) {
    let cursor: string | null = null
    do {
      const url = new URL('/api/deliveries', base)
      url.searchParams.set('status', status)
      url.searchParams.set('limit', '200')
      if (cursor !== null) url.searchParams.set('cursor', cursor)
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
      if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`)
      const page = (await res.json()) as { deliveries: unknown[]; nextCursor: string | null }
      out[status] += page.deliveries.length
      cursor = page.nextCursor
    } while (cursor !== null)
  }
  return out
}

/** A loopback port nobody listens on now. */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  return port
}
