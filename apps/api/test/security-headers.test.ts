import { describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { tileSource } from '../src/plugins/app/security.ts'
import { apiPerTest, get } from './helpers.ts'

// The HTTP security headers (issue 16): the map keeps a token in the browser. That the
// page works under them is apps/web/test/live-map.test.ts's, in Chromium.

const start = apiPerTest()
let api: FastifyInstance

/** A Content-Security-Policy header as directive → its sources. */
function csp(header: unknown): Map<string, string[]> {
  expect(typeof header).toBe('string')
  return new Map(
    (header as string)
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .filter((d) => d[0] !== '')
      .map(([name, ...sources]) => [name!, sources]),
  )
}

describe('security headers', () => {
  it('go with every answer: a strict CSP that fits the map, nosniff, no referrer, no framing', async () => {
    api = await start()
    for (const res of [
      await api.inject({ method: 'GET', url: '/config.json' }),
      await get(api, '/api/fleet'),
      await api.inject({ method: 'GET', url: '/api/fleet' }), // a 401
      await api.inject({ method: 'GET', url: '/nowhere' }), // a 404
    ]) {
      const policy = csp(res.headers['content-security-policy'])
      expect(Object.fromEntries(policy)).toEqual({
        'default-src': ["'self'"],
        'script-src': ["'self'"],
        'script-src-attr': ["'none'"],
        'style-src': ["'self'"],
        'img-src': ["'self'", 'data:', 'https://tile.openstreetmap.org'],
        'connect-src': ["'self'", 'ws://localhost:3000', 'ws://127.0.0.1:3000'],
        'font-src': ["'self'"],
        'object-src': ["'none'"],
        'base-uri': ["'none'"],
        'form-action': ["'self'"],
        'frame-ancestors': ["'none'"],
      })
      expect(res.headers['x-content-type-options']).toBe('nosniff')
      expect(res.headers['referrer-policy']).toBe('no-referrer')
      expect(res.headers['x-frame-options']).toBe('DENY')
      expect(res.headers['cross-origin-opener-policy']).toBe('same-origin')
      // The api speaks plain HTTP: HSTS is for the proxy that terminates TLS.
      expect(res.headers).not.toHaveProperty('strict-transport-security')
    }
  })

  it('allow inline styles at /docs only, for swagger-ui, and nothing else more', async () => {
    api = await start()
    const docs = csp(
      (await api.inject({ method: 'GET', url: '/docs/' })).headers['content-security-policy'],
    )
    const page = csp(
      (await api.inject({ method: 'GET', url: '/' })).headers['content-security-policy'],
    )
    expect(docs.get('style-src')).toEqual(["'self'", "'unsafe-inline'"])
    expect(Object.fromEntries(docs)).toEqual({
      ...Object.fromEntries(page),
      'style-src': docs.get('style-src'),
    })
    const json = await api.inject({ method: 'GET', url: '/docs/json' })
    expect(csp(json.headers['content-security-policy']).get('style-src')).toEqual([
      "'self'",
      "'unsafe-inline'",
    ])
  })

  it('allow the tiles of MAP_TILE_URL, none with `none`, and the live stream of PUBLIC_ORIGIN', async () => {
    api = await start({
      MAP_TILE_URL: 'https://{s}.tiles.example.org:8443/{z}/{x}/{y}.png',
      PUBLIC_ORIGIN: 'https://skyline.example',
    })
    let policy = csp(
      (await api.inject({ method: 'GET', url: '/' })).headers['content-security-policy'],
    )
    expect(policy.get('img-src')).toEqual(["'self'", 'data:', 'https://*.tiles.example.org:8443'])
    expect(policy.get('connect-src')).toEqual(["'self'", 'wss://skyline.example'])
    await api.close()

    api = await start({ MAP_TILE_URL: 'none' })
    policy = csp((await api.inject({ method: 'GET', url: '/' })).headers['content-security-policy'])
    expect(policy.get('img-src')).toEqual(["'self'", 'data:'])
  })

  it("allow the issuer's origin in connect-src when the map signs in there, and no more", async () => {
    const oidc = { OIDC_ISSUER: 'https://SSO.example:8443/realms/skyline', OIDC_AUDIENCE: 'sky' }
    const connectSrc = async () =>
      csp((await api.inject({ method: 'GET', url: '/' })).headers['content-security-policy']).get(
        'connect-src',
      )
    // Tokens from the issuer, but the map does not sign in there: nothing to fetch.
    api = await start(oidc)
    expect(await connectSrc()).toEqual(["'self'", 'ws://localhost:3000', 'ws://127.0.0.1:3000'])
    await api.close()

    api = await start({ ...oidc, OIDC_WEB_CLIENT_ID: 'skyline-map' })
    expect(await connectSrc()).toEqual([
      "'self'",
      'ws://localhost:3000',
      'ws://127.0.0.1:3000',
      'https://sso.example:8443',
    ])
  })

  it('name the port the api listens on in connect-src', async () => {
    api = await start({ HTTP_PORT: '0' })
    await api.listen({ host: '127.0.0.1', port: 0 })
    const address = api.server.address()
    if (address === null || typeof address === 'string') throw new Error('not listening')
    const res = await fetch(`http://127.0.0.1:${address.port}/config.json`)
    expect(csp(res.headers.get('content-security-policy')).get('connect-src')).toContain(
      `ws://127.0.0.1:${address.port}`,
    )
  })
})

describe('tileSource', () => {
  it.each([
    ['https://tile.openstreetmap.org/{z}/{x}/{y}.png', 'https://tile.openstreetmap.org'],
    ['http://127.0.0.1:9/{z}/{x}/{y}.png', 'http://127.0.0.1:9'],
    ['https://{s}.tile.example.org/{z}/{x}/{y}.png', 'https://*.tile.example.org'],
    ['https://Tiles.Example.org/{z}/{x}/{y}.png?key=k', 'https://tiles.example.org'],
    // CSP names no IPv6 literal: the scheme it is, then.
    ['http://[fd00::1]:8080/{z}/{x}/{y}.png', 'http:'],
    // Still a template past a leading {s}: every host of the scheme, so tiles show.
    ['https://tiles.{s}.example/{z}/{x}/{y}.png', 'https:'],
    // Nothing the template holds can add a directive.
    ["https://x;script-src 'unsafe-inline'/{z}/{x}/{y}", 'https:'],
    ['none', undefined],
  ])('%s → %s', (template, source) => {
    expect(tileSource(template)).toBe(source)
  })
})
