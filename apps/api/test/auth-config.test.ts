import { describe, expect, it } from 'vitest'
import { apiPerTest, bearer, operatorOfEveryFleet } from './helpers.ts'

// Issue 16, item 4: the map learns where to sign in before it has a token.

const start = apiPerTest()

describe('GET /api/auth/config', () => {
  it('tells the map, without a token, that it takes pasted tokens only when no web client is set', async () => {
    const api = await start()
    const res = await api.inject({ method: 'GET', url: '/api/auth/config' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ oidc: null })
    // Tokens from an issuer, but no client of the map's there: still pasted tokens only.
    const tokensOnly = await start({
      OIDC_ISSUER: 'https://sso.example/realms/skyline',
      OIDC_AUDIENCE: 'skyline',
    })
    expect((await tokensOnly.inject('/api/auth/config')).json()).toEqual({ oidc: null })
  })

  it('names the issuer, the public client, the audience and the scopes, and nothing secret', async () => {
    const api = await start({
      OIDC_ISSUER: 'https://sso.example/realms/skyline',
      OIDC_AUDIENCE: 'skyline',
      OIDC_WEB_CLIENT_ID: 'skyline-map',
      OIDC_WEB_SCOPE: 'openid profile',
      DEVICE_TOKEN_SECRET: 'a-device-token-secret-of-32-characters-or-more',
    })
    const res = await api.inject({
      method: 'GET',
      url: '/api/auth/config',
      headers: { authorization: 'Bearer not-even-a-token' },
    })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({
      oidc: {
        issuer: 'https://sso.example/realms/skyline',
        clientId: 'skyline-map',
        audience: 'skyline',
        scope: 'openid profile',
      },
    })
    expect(res.body).not.toContain('secret')
  })
})

// Issue 18: the map offers the drawing of zones to the tokens the api lets draw them.
describe('GET /api/auth/me', () => {
  it("names the token's role and fleets, and whether it operates them", async () => {
    const api = await start()
    const me = async (authorization?: string) =>
      api.inject({
        method: 'GET',
        url: '/api/auth/me',
        ...(authorization !== undefined && { headers: { authorization } }),
      })
    const viewer = await me(await bearer({ role: 'viewer', sub: 'v1', fleet: 'fa' }))
    expect(viewer.statusCode).toBe(200)
    expect(viewer.json()).toEqual({ sub: 'v1', role: 'viewer', fleets: ['fa'], operates: false })
    const ops = await me(await bearer({ role: 'service', sub: 'ops', fleet: 'fa' }))
    expect(ops.json()).toEqual({ sub: 'ops', role: 'service', fleets: ['fa'], operates: true })
    const everyFleet = await me(await operatorOfEveryFleet())
    expect(everyFleet.json()).toMatchObject({ fleets: '*', operates: true })
    // No token, and a device's: as every read.
    expect((await me()).statusCode).toBe(401)
    expect((await me(await bearer({ role: 'drone', sub: 'd1', fleet: 'fa' }))).statusCode).toBe(403)
  })
})
