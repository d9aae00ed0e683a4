import { spawn } from 'node:child_process'
import { connect as tcpConnect } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.ts'
import { Fleet } from '../src/fleet.ts'
import { SECRET, Watcher, fleetOptions, startBroker } from './helpers.ts'

const TSX_LOADER = new URL('../../../node_modules/tsx/dist/loader.mjs', import.meta.url).href
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))

const running = new Set<ReturnType<typeof spawn>>()
afterEach(() => {
  for (const child of running) child.kill('SIGKILL')
  running.clear()
})

function runSim(args: string[], env: Record<string, string>) {
  // node --import tsx: child.pid is the simulator itself, so signals reach it.
  const child = spawn(process.execPath, ['--import', TSX_LOADER, MAIN, ...args], {
    env: { ...process.env, DEVICE_TOKEN_SECRET: SECRET, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const out: string[] = []
  const err: string[] = []
  createInterface({ input: child.stdout }).on('line', (l) => out.push(l))
  createInterface({ input: child.stderr }).on('line', (l) => err.push(l))
  running.add(child)
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  return { child, out, err, exited }
}

describe('sim command line', () => {
  it.each([
    [['--drones', '-1'], '--drones'],
    [['--rate', '0'], '--rate'],
    [['--telemetry-qos', '2'], '--telemetry-qos'],
    [['--center', '95,2'], '--center'],
    [['--center', '48.8,'], '--center'],
    [['--chaos', '1.5'], '--chaos'],
    [['--fleet', 'a/b'], '--fleet'],
    [['--time-scale', 'fast'], '--time-scale'],
    [['--wings', '2'], "'--wings'"],
  ])('refuses %j naming the flag', (args, flag) => {
    expect(() => loadConfig(args, {})).toThrow(flag)
  })

  it('names the variable when the environment is bad', () => {
    expect(() => loadConfig([], { MQTT_URL: 'http://localhost' })).toThrow(/MQTT_URL/)
  })

  it('takes device tokens from an OIDC issuer only with a whole client configuration', () => {
    const oidc = {
      OIDC_ISSUER: 'https://id.example.com/realms/skyline',
      OIDC_AUDIENCE: 'skyline',
      OIDC_CLIENT_ID: '{fleet}-{device}',
      OIDC_CLIENT_SECRET: 'device-secret',
    }
    expect(loadConfig([], oidc).tokens).toEqual({
      kind: 'issuer',
      issuer: oidc.OIDC_ISSUER,
      audience: 'skyline',
      scope: undefined,
      clientIdTemplate: '{fleet}-{device}',
      clientSecret: 'device-secret',
    })
    expect(loadConfig([], {}).tokens).toMatchObject({ kind: 'secret' })
    expect(() => loadConfig([], { ...oidc, OIDC_CLIENT_ID: 'sim' })).toThrow(
      /OIDC_CLIENT_ID: must contain \{device\}/,
    )
    expect(() => loadConfig([], { ...oidc, OIDC_CLIENT_SECRET: '' })).toThrow(
      /OIDC_CLIENT_SECRET: required with OIDC_CLIENT_ID/,
    )
    expect(() => loadConfig([], { ...oidc, OIDC_ISSUER: undefined })).toThrow(/OIDC_ISSUER/)
  })

  it('reads every flag', () => {
    const config = loadConfig(
      [
        '--drones',
        '7',
        '--stations',
        '3',
        '--fleet',
        'north',
        '--center',
        '52.52,13.405',
        '--radius-km',
        '8',
        '--rate',
        '2',
        '--telemetry-qos',
        '1',
        '--chaos',
        '0.1',
        '--time-scale',
        '30',
        '--demand',
        '4',
        '--patrol',
        '--keepalive',
        '20',
        '--seed',
        '9',
      ],
      { MQTT_URL: 'mqtt://broker:1883' },
    )
    expect(config).toMatchObject({
      url: 'mqtt://broker:1883',
      drones: 7,
      stations: 3,
      fleetId: 'north',
      center: { lat: 52.52, lon: 13.405 },
      radiusKm: 8,
      rateHz: 2,
      telemetryQos: 1,
      chaosPerMin: 0.1,
      timeScale: 30,
      demandPerMin: 4,
      patrol: true,
      keepaliveS: 20,
      seed: 9,
    })
  })

  it('exits with status 2 and the usage when a flag is bad', async () => {
    const sim = runSim(['--drones', 'many'], {})
    expect(await sim.exited).toBe(2)
    expect(sim.err.join('\n')).toMatch(/--drones/)
    expect(sim.err.join('\n')).toMatch(/usage: npm run sim/)
  })
})

describe('npm run sim', () => {
  let broker: { url: string; close(): Promise<void> } | undefined
  afterEach(async () => broker?.close())

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'lands the fleet on %s: clean disconnects, a summary, exit 0',
    async (signal) => {
      broker = await startBroker()
      const watcher = await Watcher.start(broker.url, 'cli')
      const sim = runSim(['--drones', '3', '--stations', '2', '--fleet', 'cli'], {
        MQTT_URL: broker.url,
      })
      await watcher.next((m) => m.topic.endsWith('/drone-3/status'), 15_000)
      sim.child.kill(signal)
      expect(await sim.exited).toBe(0)
      expect(sim.out.join('\n')).toMatch(/published \d+ messages/)
      await watcher.next(
        () => watcher.seen.filter((m) => m.json.reason === 'shutdown').length === 5,
      )
      expect(watcher.seen.filter((m) => m.json.reason === 'connection_lost')).toEqual([])
      await watcher.close()
    },
  )
})

// Useful against any broker: with --patrol the fleet needs no dispatcher, and the
// system Mosquitto (anonymous, no ACL) takes the same clients.
const mosquitto = await new Promise<boolean>((resolve) => {
  const s = tcpConnect({ host: '127.0.0.1', port: 1883 })
  s.once('connect', () => {
    s.destroy()
    resolve(true)
  })
  s.once('error', () => resolve(false))
})
describe.runIf(mosquitto)('against the system Mosquitto', () => {
  it('flies a patrol fleet that a plain MQTT subscriber can follow', async () => {
    const fleetId = `m${Date.now().toString(36)}`
    const url = 'mqtt://127.0.0.1:1883'
    const watcher = await Watcher.start(url, fleetId, `watch-${fleetId}`)
    const fleet = await Fleet.start(
      fleetOptions(url, { fleetId, drones: 2, patrol: true, timeScale: 100 }),
    )
    try {
      await watcher.next((m) => m.topic.endsWith('/telemetry') && m.json.state === 'en_route')
      expect(watcher.invalid()).toEqual([])
    } finally {
      await fleet.stop()
      await watcher.close()
    }
  })
})
