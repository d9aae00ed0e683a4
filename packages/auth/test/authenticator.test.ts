import { decodeJwt } from 'jose'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { createAuthenticator, signDeviceToken } from '../src/index.ts'
import type { Authenticator } from '../src/index.ts'
import { OTHER_AUDIENCE, TEST_AUDIENCE, startTestIssuer } from './issuer.ts'
import type { TestIssuer } from './issuer.ts'

const SECRET = 'test-secret-that-is-at-least-32-characters-long'

describe('device tokens (HS256)', () => {
  const auth = createAuthenticator({ secret: SECRET })

  it('gives a drone, station or viewer its fleet, and a service its fleet or every fleet', async () => {
    const cases = [
      [{ role: 'drone', sub: 'd1', fleet: 'f1' }, ['f1']],
      [{ role: 'station', sub: 's1', fleet: 'f1' }, ['f1']],
      [{ role: 'viewer', sub: 'v1', fleet: 'f2' }, ['f2']],
      [{ role: 'service', sub: 'ops', fleet: 'f3' }, ['f3']],
      [{ role: 'service', sub: 'api' }, '*'],
    ] as const
    for (const [claims, fleets] of cases) {
      const principal = await auth.verify(await signDeviceToken(SECRET, claims))
      expect(principal).toEqual({ sub: claims.sub, role: claims.role, fleets, kind: 'device' })
    }
  })

  it('carries the expiry, and refuses an expired token or another secret', async () => {
    const token = await signDeviceToken(SECRET, { role: 'viewer', sub: 'v', fleet: 'f' }, 60)
    expect((await auth.verify(token)).exp).toBe(decodeJwt(token).exp)
    const expired = await signDeviceToken(SECRET, { role: 'viewer', sub: 'v', fleet: 'f' }, -1)
    await expect(auth.verify(expired)).rejects.toMatchObject({ code: 'token_expired' })
    const other = await signDeviceToken('x'.repeat(40), { role: 'viewer', sub: 'v', fleet: 'f' })
    await expect(auth.verify(other)).rejects.toMatchObject({ code: 'token_invalid' })
    await expect(auth.verify('not a token')).rejects.toMatchObject({ code: 'token_invalid' })
  })

  it('refuses an asymmetric token when no OIDC issuer is configured', async () => {
    const issuer = await startTestIssuer([{ id: 'c', claims: { role: 'admin' } }])
    try {
      await expect(auth.verify(await issuer.token('c'))).rejects.toMatchObject({
        code: 'token_invalid',
      })
    } finally {
      await issuer.close()
    }
  })
})

describe('OIDC access tokens from a real issuer (oidc-provider, client credentials)', () => {
  let issuer: TestIssuer
  let elsewhere: TestIssuer
  let auth: Authenticator

  beforeAll(async () => {
    const clients = [
      { id: 'ops', claims: { role: 'service', fleet: ['f1', 'f2'] } },
      { id: 'root', claims: { role: 'admin' } },
      {
        id: 'kc-viewer',
        claims: { realm_access: { roles: ['offline_access', 'viewer'] }, tenant: { fleet: 'f1' } },
      },
      { id: 'nobody', claims: { role: 'pilot', fleet: 'f1' } },
    ]
    issuer = await startTestIssuer(clients)
    elsewhere = await startTestIssuer(clients)
    auth = createAuthenticator({
      secret: SECRET,
      oidc: { issuer: issuer.issuer, audience: TEST_AUDIENCE },
    })
  })
  afterAll(async () => {
    await issuer.close()
    await elsewhere.close()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('accepts a client-credentials token: sub, role and fleets from its claims', async () => {
    const token = await issuer.token('ops')
    expect(decodeJwt(token)).toMatchObject({ iss: issuer.issuer, aud: TEST_AUDIENCE })
    expect(await auth.verify(token)).toEqual({
      sub: 'ops',
      role: 'service',
      fleets: ['f1', 'f2'],
      exp: decodeJwt(token).exp,
      kind: 'oidc',
    })
    expect(await auth.verify(await issuer.token('root'))).toMatchObject({
      role: 'admin',
      fleets: '*',
    })
  })

  it('reads role and fleet from the configured dotted paths', async () => {
    const keycloak = createAuthenticator({
      secret: SECRET,
      oidc: {
        issuer: issuer.issuer,
        audience: TEST_AUDIENCE,
        roleClaim: 'realm_access.roles',
        fleetClaim: 'tenant.fleet',
      },
    })
    expect(await keycloak.verify(await issuer.token('kc-viewer'))).toMatchObject({
      sub: 'kc-viewer',
      role: 'viewer',
      fleets: ['f1'],
    })
  })

  it('refuses a token of another issuer, for another audience, or signed by another key', async () => {
    await expect(auth.verify(await elsewhere.token('ops'))).rejects.toMatchObject({
      code: 'token_invalid',
      message: 'token issuer is not OIDC_ISSUER',
    })
    await expect(auth.verify(await issuer.token('ops', OTHER_AUDIENCE))).rejects.toMatchObject({
      code: 'token_invalid',
      message: 'token audience is not OIDC_AUDIENCE',
    })
    const forged = await issuer.forge({ sub: 'ops', role: 'admin' })
    await expect(auth.verify(forged)).rejects.toMatchObject({
      code: 'token_invalid',
      message: 'token signature does not verify',
    })
  })

  it('refuses a token whose claims grant no Skyline role', async () => {
    await expect(auth.verify(await issuer.token('nobody'))).rejects.toMatchObject({
      code: 'token_claims',
      message: 'claim role names no Skyline role',
    })
  })

  it('refuses an expired token once past the clock skew, not before', async () => {
    const token = await issuer.token('ops')
    const exp = decodeJwt(token).exp! * 1000
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(exp + 29_000)
    await expect(auth.verify(token)).resolves.toMatchObject({ sub: 'ops' })
    vi.setSystemTime(exp + 31_000)
    await expect(auth.verify(token)).rejects.toMatchObject({ code: 'token_expired' })
  })

  it('keeps the issuer keys, and fetches them again for an unknown kid', async () => {
    const fresh = createAuthenticator({
      secret: SECRET,
      oidc: { issuer: issuer.issuer, audience: TEST_AUDIENCE },
    })
    const before = issuer.jwksFetches
    await fresh.verify(await issuer.token('ops'))
    await fresh.verify(await issuer.token('root'))
    expect(issuer.jwksFetches).toBe(before + 1)
    // jose asks again for a kid it does not know, at most once per 30 s.
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(Date.now() + 31_000)
    const unknownKid = await issuer.forge({ sub: 'ops', role: 'admin' }, 'rotated')
    await expect(fresh.verify(unknownKid)).rejects.toMatchObject({ code: 'token_invalid' })
    expect(issuer.jwksFetches).toBe(before + 2)
  })

  it('says the issuer is unavailable, not the token invalid, when discovery fails', async () => {
    const gone = await startTestIssuer([{ id: 'ops', claims: { role: 'service', fleet: 'f1' } }])
    const token = await gone.token('ops')
    await gone.close()
    const orphan = createAuthenticator({
      secret: SECRET,
      oidc: { issuer: gone.issuer, audience: TEST_AUDIENCE },
    })
    const err = await orphan.verify(token).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'issuer_unavailable' })
    expect(String((err as Error).message)).not.toContain(token)
  })
})
