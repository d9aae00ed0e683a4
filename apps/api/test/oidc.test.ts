import { afterEach, describe, expect, it, vi } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { Database } from '../src/db/client.ts'
import { drones } from '../src/db/schema.ts'
import {
  OTHER_AUDIENCE,
  TEST_AUDIENCE,
  startTestIssuer,
} from '../../../packages/auth/test/issuer.ts'
import type { TestIssuer } from '../../../packages/auth/test/issuer.ts'
import { tokenAuthenticator } from '../src/auth/authenticate.ts'
import { DATABASES, SECRET, buildApi, get, startBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Issue 16, item 1: with OIDC_ISSUER the api takes the issuer's access tokens beside its
// own, from a real OpenID Provider (client-credentials grant), and scopes them like any.

describe.each(DATABASES)('OIDC access tokens on the api, %s', (_name, open) => {
  let issuer: TestIssuer | undefined
  let broker: TestBroker | undefined
  let database: Database | undefined
  let api: FastifyInstance | undefined
  afterEach(async () => {
    await api?.close()
    await database?.close()
    await broker?.close()
    await issuer?.close()
    api = database = broker = issuer = undefined
  })

  const start = async () => {
    issuer = await startTestIssuer([
      { id: 'viewer-a', claims: { role: 'viewer', fleet: 'fa' } },
      { id: 'viewer-brief', claims: { role: 'viewer', fleet: 'fa' }, ttlS: 1 },
      { id: 'keycloak-admin', claims: { realm_access: { roles: ['offline', 'admin'] } } },
    ])
    broker = await startBroker()
    database = await open()
    await database.db.insert(drones).values([
      { fleetId: 'fa', id: 'd1' },
      { fleetId: 'fb', id: 'd2' },
    ])
    return issuer
  }
  const build = (env: Record<string, string>) =>
    buildApi(broker!.url, database!, { OIDC_AUDIENCE: TEST_AUDIENCE, ...env })
  const ids = async (authorization: string) => {
    const res = await get(api!, '/api/drones', authorization)
    expect(res.statusCode, res.body).toBe(200)
    return res
      .json<{ drones: { id: string }[] }>()
      .drones.map((d) => d.id)
      .sort()
  }

  it("reads with the issuer's token, scoped to its fleets, and refuses what does not verify", async () => {
    const idp = await start()
    const iss = idp.issuer
    api = await build({ OIDC_ISSUER: iss })

    expect(await ids(`Bearer ${await idp.token('viewer-a', TEST_AUDIENCE)}`)).toEqual(['d1'])
    const forged = await idp.forge({ role: 'admin', fleet: '*', sub: 'mallory' })
    expect((await get(api, '/api/drones', `Bearer ${forged}`)).statusCode).toBe(401)
    const elsewhere = await idp.token('viewer-a', OTHER_AUDIENCE)
    expect((await get(api, '/api/drones', `Bearer ${elsewhere}`)).statusCode).toBe(401)
  })

  it('takes the role from a nested claim (Keycloak layout)', async () => {
    const idp = await start()
    const iss = idp.issuer
    api = await build({ OIDC_ISSUER: iss, OIDC_ROLE_CLAIM: 'realm_access.roles' })
    expect(await ids(`Bearer ${await idp.token('keycloak-admin', TEST_AUDIENCE)}`)).toEqual([
      'd1',
      'd2',
    ])
  })

  it('answers 503 while the issuer cannot be reached, not 401', async () => {
    const idp = await start()
    const iss = idp.issuer
    api = await build({ OIDC_ISSUER: iss })
    const good = await idp.token('viewer-a', TEST_AUDIENCE)
    await issuer!.close()
    issuer = undefined
    const res = await get(api, '/api/drones', `Bearer ${good}`)
    expect(res.statusCode, res.body).toBe(503)
    expect(res.json()).toMatchObject({ error: { code: 'issuer_unavailable' } })
  })

  it('refuses a token of another issuer, and one past its exp', async () => {
    const idp = await start()
    const other = await startTestIssuer([
      { id: 'viewer-a', claims: { role: 'viewer', fleet: 'fa' } },
    ])
    try {
      const oidc = {
        issuer: idp.issuer,
        audience: TEST_AUDIENCE,
        roleClaim: 'role',
        fleetClaim: 'fleet',
      }
      api = await buildApi(
        broker!.url,
        database!,
        { OIDC_ISSUER: idp.issuer, OIDC_AUDIENCE: TEST_AUDIENCE },
        // No clock skew allowed, so that the expiry is the token's own.
        { authenticate: tokenAuthenticator(SECRET, { ...oidc, clockToleranceS: 0 }) },
      )
      const elsewhere = await other.token('viewer-a', TEST_AUDIENCE)
      expect((await get(api, '/api/drones', `Bearer ${elsewhere}`)).statusCode).toBe(401)

      const brief = await idp.token('viewer-brief', TEST_AUDIENCE)
      expect(await ids(`Bearer ${brief}`)).toEqual(['d1'])
      await vi.waitFor(
        async () => {
          const res = await get(api!, '/api/drones', `Bearer ${brief}`)
          expect(res.statusCode).toBe(401)
          expect(res.json()).toMatchObject({ error: { code: 'unauthorized' } })
        },
        { timeout: 5_000, interval: 100 },
      )
    } finally {
      await other.close()
    }
  }, 60_000)
})
