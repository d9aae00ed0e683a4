import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { afterAll, describe, expect, it } from 'vitest'
import { ConfigError, liveOrigins, loadConfig } from '../src/config.ts'

describe('PUBLIC_ORIGIN', () => {
  it('defaults to the addresses the api listens on, on the port it listens on', () => {
    expect(liveOrigins(loadConfig({}), 3000)).toEqual([
      'http://localhost:3000',
      'http://127.0.0.1:3000',
      'http://[::1]:3000',
    ])
    expect(liveOrigins(loadConfig({ HOST: '10.1.2.3' }), 8080)).toContain('http://10.1.2.3:8080')
    expect(liveOrigins(loadConfig({ HOST: 'fd00::7' }), 8080)).toContain('http://[fd00::7]:8080')
    expect(liveOrigins(loadConfig({ HOST: '::' }), 80)).toEqual([
      'http://localhost',
      'http://127.0.0.1',
      'http://[::1]',
    ])
  })

  it('takes a comma-separated list of origins, written as a browser writes Origin', () => {
    const config = loadConfig({
      PUBLIC_ORIGIN: ' https://Skyline.Example , http://ops.example:8080/, https://x.example:443,',
    })
    expect(liveOrigins(config, 3000)).toEqual([
      'https://skyline.example',
      'http://ops.example:8080',
      'https://x.example',
    ])
  })

  it.each([
    ['localhost:3000'],
    ['ftp://files.example'],
    ['https://skyline.example/map'],
    ['https://skyline.example?x=1'],
    [' , '],
  ])('stops start-up on %j, naming the variable', (value) => {
    expect(() => loadConfig({ PUBLIC_ORIGIN: value })).toThrow(ConfigError)
    expect(() => loadConfig({ PUBLIC_ORIGIN: value })).toThrow(/PUBLIC_ORIGIN/)
  })
})

describe('the live stream limits', () => {
  it('have defaults, and refuse values that are not positive whole numbers', () => {
    const config = loadConfig({})
    expect(config.LIVE_MAX_CLIENTS).toBe(1_000)
    expect(config.LIVE_MAX_CLIENTS_PER_ADDRESS).toBe(50)
    expect(config.LIVE_SEND_BUDGET_BYTES).toBe(2 ** 20)
    expect(config.LIVE_MAX_LAG_MS).toBe(5_000)
    for (const name of ['LIVE_MAX_CLIENTS', 'LIVE_MAX_CLIENTS_PER_ADDRESS', 'LIVE_MAX_LAG_MS']) {
      expect(() => loadConfig({ [name]: '0' }), name).toThrow(new RegExp(name))
      expect(() => loadConfig({ [name]: 'many' }), name).toThrow(new RegExp(name))
    }
    expect(() => loadConfig({ LIVE_SEND_BUDGET_BYTES: '1000' })).toThrow(/LIVE_SEND_BUDGET_BYTES/)
  })
})

describe('TRUST_PROXY', () => {
  it('takes addresses, CIDR ranges and named ranges, and stops start-up naming itself on anything else', () => {
    expect(loadConfig({}).TRUST_PROXY).toEqual([])
    expect(loadConfig({ TRUST_PROXY: '127.0.0.1, 10.0.0.0/8,::1,fd00::/8' }).TRUST_PROXY).toEqual([
      '127.0.0.1',
      '10.0.0.0/8',
      '::1',
      'fd00::/8',
    ])
    // proxy-addr's named ranges, as Fastify's trustProxy passes them on.
    expect(loadConfig({ TRUST_PROXY: 'uniquelocal,loopback, linklocal' }).TRUST_PROXY).toEqual([
      'uniquelocal',
      'loopback',
      'linklocal',
    ])
    for (const value of [
      'private',
      'Uniquelocal',
      'proxy.local',
      '10.0.0.0/33',
      '10.0.0.1/8/2',
      '::1/129',
      '1.2.3',
    ])
      expect(() => loadConfig({ TRUST_PROXY: value }), value).toThrow(/TRUST_PROXY/)
  })
})

describe("the map's OpenID Connect sign-in", () => {
  const issuer = { OIDC_ISSUER: 'https://sso.example/realms/skyline', OIDC_AUDIENCE: 'skyline' }

  it('takes a client id and scopes, scope openid by default', () => {
    expect(loadConfig({}).OIDC_WEB_CLIENT_ID).toBeUndefined()
    expect(loadConfig({ ...issuer, OIDC_WEB_CLIENT_ID: 'skyline-map' })).toMatchObject({
      OIDC_WEB_CLIENT_ID: 'skyline-map',
      OIDC_WEB_SCOPE: 'openid',
    })
    expect(loadConfig({ OIDC_WEB_SCOPE: 'openid profile offline_access' }).OIDC_WEB_SCOPE).toBe(
      'openid profile offline_access',
    )
  })

  it('stops start-up naming the variable on a bad value, or a client id without an issuer', () => {
    for (const value of ['has space', 'x'.repeat(256), 'naïve'])
      expect(() => loadConfig({ ...issuer, OIDC_WEB_CLIENT_ID: value }), value).toThrow(
        /OIDC_WEB_CLIENT_ID: must be/,
      )
    expect(() => loadConfig({ OIDC_WEB_CLIENT_ID: 'skyline-map' })).toThrow(
      /OIDC_WEB_CLIENT_ID: needs OIDC_ISSUER/,
    )
    for (const value of ['openid  profile', ' openid', 'openid "x"', 'a\\b'])
      expect(() => loadConfig({ OIDC_WEB_SCOPE: value }), value).toThrow(/OIDC_WEB_SCOPE/)
  })
})

describe('DATABASE_PASSWORD_FILE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skyline-api-config-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const file = (name: string, content: string) => {
    const path = join(dir, name)
    writeFileSync(path, content)
    return path
  }

  it("puts the file's password into DATABASE_URL, any character, as postgres.js reads it", async () => {
    const password = 'p@ss:w/rd%41 #?é'
    const config = loadConfig({
      DATABASE_URL: 'postgres://skyline@postgres:5432/skyline',
      DATABASE_PASSWORD_FILE: file('password', `${password}\n`),
    })
    const sql = postgres(config.DATABASE_URL!) // connects on its first query only
    expect(sql.options).toMatchObject({ user: 'skyline', pass: password, database: 'skyline' })
    expect(sql.options.host).toEqual(['postgres'])
    await sql.end()
  })

  it.each([
    ['no DATABASE_URL', {}, /needs DATABASE_URL/],
    [
      'a password in DATABASE_URL too',
      { DATABASE_URL: 'postgres://skyline:other@postgres/skyline' },
      /in one place/,
    ],
  ])('stops start-up with %s, naming the variable', (_, env, message) => {
    const config = () => loadConfig({ ...env, DATABASE_PASSWORD_FILE: file('pw', 'secret') })
    expect(config).toThrow(ConfigError)
    expect(config).toThrow(/DATABASE_PASSWORD_FILE/)
    expect(config).toThrow(message)
  })

  it('stops start-up on a file that is missing or empty, naming the variable and the file', () => {
    const url = 'postgres://skyline@postgres/skyline'
    const missing = join(dir, 'missing')
    expect(() => loadConfig({ DATABASE_URL: url, DATABASE_PASSWORD_FILE: missing })).toThrow(
      `DATABASE_PASSWORD_FILE: cannot read ${missing}`,
    )
    const empty = file('empty', '\n')
    expect(() => loadConfig({ DATABASE_URL: url, DATABASE_PASSWORD_FILE: empty })).toThrow(
      `DATABASE_PASSWORD_FILE: ${empty} is empty`,
    )
  })

  it('leaves DATABASE_URL as it is without the file', () => {
    const url = 'postgres://skyline:inline@postgres:5432/skyline'
    expect(loadConfig({ DATABASE_URL: url }).DATABASE_URL).toBe(url)
    expect(loadConfig({}).DATABASE_URL).toBeUndefined()
  })
})

describe('the alerts variables', () => {
  it('have defaults, and take a threshold per fleet', () => {
    const config = loadConfig({ ALERT_BATTERY_LOW_PCT_BY_FLEET: 'f1:30, f-2:12.5,' })
    expect(config.ALERT_BATTERY_LOW_PCT).toBe(20)
    expect(config.ALERT_BATTERY_CLEAR_MARGIN_PCT).toBe(5)
    expect(config.ALERT_STALE_S).toBe(30)
    expect(config.ALERT_LATE_MARGIN_S).toBe(120)
    expect(config.ALERT_OFFLINE_GRACE_S).toBe(10)
    expect(loadConfig({ ALERT_LATE_MARGIN_S: '0' }).ALERT_LATE_MARGIN_S).toBe(0)
    expect(config.ALERT_BATTERY_LOW_PCT_BY_FLEET).toEqual({ f1: 30, 'f-2': 12.5 })
    expect(config.ALERT_WEBHOOK_URL).toBeUndefined()
  })

  it.each([
    [{ ALERT_BATTERY_LOW_PCT: '101' }, 'ALERT_BATTERY_LOW_PCT'],
    [{ ALERT_BATTERY_LOW_PCT_BY_FLEET: 'f1=30' }, 'ALERT_BATTERY_LOW_PCT_BY_FLEET'],
    [{ ALERT_BATTERY_LOW_PCT_BY_FLEET: 'f/1:30' }, 'ALERT_BATTERY_LOW_PCT_BY_FLEET'],
    [{ ALERT_BATTERY_LOW_PCT_BY_FLEET: 'f1:' }, 'ALERT_BATTERY_LOW_PCT_BY_FLEET'],
    [{ ALERT_STALE_S: '0' }, 'ALERT_STALE_S'],
    [{ ALERT_LATE_MARGIN_S: '-1' }, 'ALERT_LATE_MARGIN_S'],
    [{ ALERT_OFFLINE_GRACE_S: '3601' }, 'ALERT_OFFLINE_GRACE_S'],
    [{ ALERT_OFFLINE_GRACE_S: 'ten' }, 'ALERT_OFFLINE_GRACE_S'],
    [{ ALERT_LATE_MARGIN_S: '2m' }, 'ALERT_LATE_MARGIN_S'],
    [{ ALERT_LATE_MARGIN_S: '86401' }, 'ALERT_LATE_MARGIN_S'],
    [{ ALERT_WEBHOOK_URL: 'ftp://hooks.example' }, 'ALERT_WEBHOOK_URL'],
    [{ ALERT_WEBHOOK_URL: 'https://hooks.example/skyline' }, 'ALERT_WEBHOOK_SECRET'],
    [{ ALERT_WEBHOOK_SECRET: 'a-secret-of-enough-length' }, 'ALERT_WEBHOOK_SECRET'],
    [
      { ALERT_WEBHOOK_URL: 'https://hooks.example', ALERT_WEBHOOK_SECRET: 'short' },
      'ALERT_WEBHOOK_SECRET',
    ],
    [{ ALERT_WEBHOOK_MAX_ATTEMPTS: '0' }, 'ALERT_WEBHOOK_MAX_ATTEMPTS'],
  ])('stops start-up on %j, naming %s', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError)
    expect(() => loadConfig(env)).toThrow(new RegExp(`${name}:`))
  })
})
