import { describe, expect, it } from 'vitest'
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
  it('takes addresses and CIDR ranges, and stops start-up naming itself on anything else', () => {
    expect(loadConfig({}).TRUST_PROXY).toEqual([])
    expect(loadConfig({ TRUST_PROXY: '127.0.0.1, 10.0.0.0/8,::1,fd00::/8' }).TRUST_PROXY).toEqual([
      '127.0.0.1',
      '10.0.0.0/8',
      '::1',
      'fd00::/8',
    ])
    for (const value of ['proxy.local', '10.0.0.0/33', '10.0.0.1/8/2', '::1/129', '1.2.3'])
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
