import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import { verifyDeviceToken } from '@skyline/auth'
import { loadConfig } from '../src/index.ts'
import { spawnBroker } from './broker-process.ts'
import {
  SECRET,
  TEST_REDIS_URL,
  connectAs,
  closedWithin,
  dropClusterKeys,
  testClusterName,
} from './helpers.ts'

const run = promisify(execFile)
const TSX = fileURLToPath(new URL('../../../node_modules/tsx/dist/cli.mjs', import.meta.url))
const TOKEN_CLI = fileURLToPath(new URL('../src/token-cli.ts', import.meta.url))

describe('npm run broker', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'stops cleanly on %s, disconnecting its clients',
    async (signal) => {
      const broker = await spawnBroker({ DEVICE_TOKEN_SECRET: SECRET })
      const client = await connectAs(`mqtt://127.0.0.1:${broker.ports.mqtt}`, {
        role: 'service',
        sub: 'api',
      })
      const closed = closedWithin(client)
      expect(await broker.stop(signal)).toBe(0)
      await closed
      expect(broker.logs.map((l) => l.msg)).toEqual(
        expect.arrayContaining(['shutting down', 'stopped']),
      )
      await client.endAsync(true)
    },
  )

  it('drains on SIGTERM with Redis: out of rotation at once, clients closed over BROKER_DRAIN_S, exit 0', async () => {
    const cluster = testClusterName('sigterm')
    const broker = await spawnBroker({
      DEVICE_TOKEN_SECRET: SECRET,
      REDIS_URL: TEST_REDIS_URL,
      BROKER_CLUSTER: cluster,
      BROKER_DRAIN_S: '1',
    })
    try {
      const client = await connectAs(`mqtt://127.0.0.1:${broker.ports.mqtt}`, {
        role: 'service',
        sub: 'api',
      })
      const closed = closedWithin(client)
      const health = () => fetch(`http://127.0.0.1:${broker.ports.metrics}/health`)
      expect((await health()).status).toBe(200)
      const signalledAt = Date.now()
      const exit = broker.stop('SIGTERM')
      // The only client is closed at the end of the 1 s window; /health fails before.
      await vi.waitFor(async () => expect((await health()).status).toBe(503), { timeout: 900 })
      expect(client.connected).toBe(true)
      await closed
      expect(await exit).toBe(0)
      const took = Date.now() - signalledAt
      expect(took).toBeGreaterThanOrEqual(1_000)
      expect(took).toBeLessThan(1_000 + 4_000) // run.ts's CLOSE_BOUND_MS
      expect(broker.logs.find((l) => l.msg === 'shutting down')).toMatchObject({ drainS: 1 })
      await client.endAsync(true)
    } finally {
      await broker.stop('SIGKILL')
      await dropClusterKeys(cluster)
    }
  })

  it("still prints mqtt-packet's debug output when DEBUG asks for it", async () => {
    // The broker hands mqtt-packet silent loggers for the namespaces DEBUG leaves off
    // (src/quiet-debug.ts); one it names must still print.
    const broker = await spawnBroker({ DEVICE_TOKEN_SECRET: SECRET, DEBUG: 'mqtt-packet:parser' })
    try {
      const client = await connectAs(`mqtt://127.0.0.1:${broker.ports.mqtt}`, {
        role: 'service',
        sub: 'api',
      })
      await client.endAsync()
      await vi.waitFor(
        () => expect(broker.stderr.some((l) => l.includes('mqtt-packet:parser'))).toBe(true),
        { timeout: 5_000 },
      )
    } finally {
      await broker.stop()
    }
  })

  it('bounds the connections of one drone as MQTT_CONNS_PER_DEVICE says', async () => {
    const broker = await spawnBroker({
      DEVICE_TOKEN_SECRET: SECRET,
      MQTT_CONNS_PER_DEVICE: '2',
    })
    try {
      const url = `mqtt://127.0.0.1:${broker.ports.mqtt}`
      const d1 = { role: 'drone', sub: 'd1', fleet: 'f1' } as const
      const [a, b] = [
        await connectAs(url, d1, { clientId: 'a' }),
        await connectAs(url, d1, { clientId: 'b' }),
      ]
      const closed = closedWithin(a)
      const c = await connectAs(url, d1, { clientId: 'c' })
      await closed
      expect([b.connected, c.connected]).toEqual([true, true])
      await Promise.all([a, b, c].map((client) => client.endAsync(true)))
    } finally {
      await broker.stop()
    }
  })

  it('stops with a message naming the variable when a value is bad', async () => {
    await expect(
      spawnBroker({ DEVICE_TOKEN_SECRET: SECRET, MQTT_PORT: 'eighteen' }),
    ).rejects.toThrow(/MQTT_PORT/)
    await expect(spawnBroker({ DEVICE_TOKEN_SECRET: 'short' })).rejects.toThrow(
      /DEVICE_TOKEN_SECRET: must be at least 32/,
    )
    await expect(
      spawnBroker({ DEVICE_TOKEN_SECRET: SECRET, OIDC_ISSUER: 'https://id.example.com' }),
    ).rejects.toThrow(/OIDC_AUDIENCE: required with OIDC_ISSUER/)
    await expect(
      spawnBroker({ DEVICE_TOKEN_SECRET: SECRET, BROKER_DRAIN_S: '-5' }),
    ).rejects.toThrow(/BROKER_DRAIN_S: must be 0 or more seconds/)
  })

  it('stops with a message naming the variable when its port is taken', async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const port = (taken.address() as AddressInfo).port
    try {
      await expect(
        spawnBroker({ DEVICE_TOKEN_SECRET: SECRET, MQTT_PORT: String(port) }),
      ).rejects.toThrow(`port ${port} is already in use: set MQTT_PORT to a free port`)
    } finally {
      taken.close()
    }
  })
})

describe('npm run broker with npm run token and mosquitto-clients', () => {
  it('lets mosquitto_sub and mosquitto_pub in with tokens from the shared secret in DATA_DIR', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'skyline-broker-'))
    const env = { ...process.env, DATA_DIR: dataDir, DEVICE_TOKEN_SECRET: '' }
    const broker = await spawnBroker({ DATA_DIR: dataDir, DEVICE_TOKEN_SECRET: '' })
    try {
      const token = async (...args: string[]) =>
        (await run(process.execPath, [TSX, TOKEN_CLI, ...args], { env })).stdout.trim()
      const viewer = await token('--role', 'viewer', '--fleet', 'f1', '--id', 'ops1')
      const drone = await token('--role', 'drone', '--fleet', 'f1', '--id', 'd1')
      const port = String(broker.ports.mqtt)
      const sub = run('mosquitto_sub', [
        '-h',
        '127.0.0.1',
        '-p',
        port,
        '-i',
        'ops1',
        '-u',
        'ops1',
        '-P',
        viewer,
        '-t',
        'fleet/f1/#',
        '-v',
        '-C',
        '1',
        '-W',
        '10',
      ])
      // mosquitto_sub has no "subscribed" signal: publish retained, so it arrives whenever it subscribes.
      await run('mosquitto_pub', [
        '-h',
        '127.0.0.1',
        '-p',
        port,
        '-i',
        'd1',
        '-u',
        'd1',
        '-P',
        drone,
        '-q',
        '1',
        '-r',
        '-t',
        'fleet/f1/drones/d1/status',
        '-m',
        'hello',
      ])
      expect((await sub).stdout.trim()).toBe('fleet/f1/drones/d1/status hello')
      await expect(
        run('mosquitto_pub', [
          '-h',
          '127.0.0.1',
          '-p',
          port,
          '-i',
          'x',
          '-u',
          'd1',
          '-P',
          'not-a-token',
          '-t',
          'fleet/f1/drones/d1/status',
          '-m',
          'x',
        ]),
      ).rejects.toMatchObject({ stderr: expect.stringMatching(/not authori[sz]ed/i) as unknown })
    } finally {
      await broker.stop()
    }
  })
})

describe('configuration', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      MQTT_PORT: 1883,
      MQTT_WS_PORT: 8083,
      MQTTS_PORT: 8883,
      MQTT_MAX_PACKET_BYTES: 65_536,
      MQTT_ALLOW_ANONYMOUS: false,
      MQTT_CONNS_PER_DEVICE: 1,
      MQTT_CONNS_PER_USER: 10,
      BROKER_DRAIN_S: 5,
      OIDC_ROLE_CLAIM: 'role',
      OIDC_FLEET_CLAIM: 'fleet',
    })
    expect(config.OIDC_ISSUER).toBeUndefined()
  })

  it.each([
    [{ MQTT_PORT: '70000' }, 'MQTT_PORT'],
    [{ MQTT_RATE_LIMIT: '-1' }, 'MQTT_RATE_LIMIT'],
    [{ MQTT_CONNS_PER_DEVICE: '0' }, 'MQTT_CONNS_PER_DEVICE'],
    [{ MQTT_CONNS_PER_USER: 'many' }, 'MQTT_CONNS_PER_USER'],
    [{ MQTT_ALLOW_ANONYMOUS: 'yes' }, 'MQTT_ALLOW_ANONYMOUS'],
    [{ REDIS_URL: 'http://localhost' }, 'REDIS_URL'],
    [{ BROKER_CLUSTER: 'a/b' }, 'BROKER_CLUSTER'],
    [{ BROKER_DRAIN_S: '-1' }, 'BROKER_DRAIN_S'],
    [{ BROKER_DRAIN_S: 'soon' }, 'BROKER_DRAIN_S'],
    [{ TLS_CERT: '/tmp/cert.pem' }, 'TLS_CERT'],
    [{ OIDC_ISSUER: 'id.example.com' }, 'OIDC_ISSUER'],
    [{ OIDC_ISSUER: 'https://id.example.com' }, 'OIDC_AUDIENCE'],
    [{ OIDC_AUDIENCE: 'skyline' }, 'OIDC_ISSUER'],
    [{ OIDC_ROLE_CLAIM: 'realm_access..roles' }, 'OIDC_ROLE_CLAIM'],
    [{ OIDC_FLEET_CLAIM: 'a b' }, 'OIDC_FLEET_CLAIM'],
  ])('rejects %o naming %s', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(new RegExp(`${variable}:`))
  })
})

describe('npm run token', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'skyline-token-'))
  const token = (args: string[], env: Record<string, string> = {}) =>
    run(process.execPath, [TSX, TOKEN_CLI, ...args], {
      env: { ...process.env, DATA_DIR: dataDir, DEVICE_TOKEN_SECRET: '', ...env },
    })

  it('prints a token that verifies with the secret it created in DATA_DIR', async () => {
    const { stdout } = await token(['--role', 'drone', '--fleet', 'f1', '--id', 'd7'])
    const secret = readFileSync(join(dataDir, 'device-token-secret'), 'utf8').trim()
    expect(await verifyDeviceToken(secret, stdout.trim())).toEqual({
      role: 'drone',
      id: 'd7',
      fleet: 'f1',
    })
    const again = await token(['--role', 'drone', '--fleet', 'f1', '--id', 'd7'])
    expect(await verifyDeviceToken(secret, again.stdout.trim())).toMatchObject({ id: 'd7' })
  })

  it('signs with DEVICE_TOKEN_SECRET when it is set', async () => {
    const { stdout } = await token(['--role', 'service', '--id', 'api'], {
      DEVICE_TOKEN_SECRET: SECRET,
    })
    expect(await verifyDeviceToken(SECRET, stdout.trim())).toEqual({ role: 'service', id: 'api' })
  })

  it.each([
    [['--role', 'pilot', '--fleet', 'f1', '--id', 'd1'], /--role/],
    [['--role', 'drone', '--id', 'd1'], /--fleet: required/],
    [['--role', 'drone', '--fleet', 'f1', '--id', 'a/b'], /--id/],
  ])('exits with a message naming the flag for %j', async (args, message) => {
    const failure = (await token(args).then(
      () => undefined,
      (err: unknown) => err,
    )) as { code: number; stderr: string } | undefined
    expect(failure?.code).toBe(2)
    expect(failure?.stderr).toMatch(message)
  })
})
