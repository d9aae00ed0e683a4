import { describe, expect, it } from 'vitest'
import { TokenError, claimAt, fleetsFrom, oidcPrincipal, roleFrom } from '../src/index.ts'

const paths = { roleClaim: 'role', fleetClaim: 'fleet' }
const keycloak = { roleClaim: 'realm_access.roles', fleetClaim: 'skyline_fleet' }

describe('claim paths', () => {
  it('reads a nested claim by dotted path, and a claim whose name has dots whole', () => {
    const payload = {
      realm_access: { roles: ['offline_access', 'viewer'] },
      'https://skyline.example/role': 'admin',
    }
    expect(claimAt(payload, 'realm_access.roles')).toEqual(['offline_access', 'viewer'])
    expect(claimAt(payload, 'https://skyline.example/role')).toBe('admin')
    expect(claimAt(payload, 'realm_access.missing')).toBeUndefined()
    expect(claimAt(payload, 'realm_access.roles.0')).toBeUndefined() // paths name objects, not arrays
    expect(claimAt({ a: 'x' }, 'a.b')).toBeUndefined()
  })

  it('takes the first Skyline role of an array of roles, and refuses one with none', () => {
    expect(roleFrom(['offline_access', 'uma_authorization', 'service', 'viewer'], 'r')).toBe(
      'service',
    )
    expect(roleFrom('viewer', 'r')).toBe('viewer')
    expect(() => roleFrom(['offline_access'], 'realm_access.roles')).toThrow(
      /claim realm_access.roles names no Skyline role/,
    )
    expect(() => roleFrom(undefined, 'role')).toThrow(TokenError)
    expect(() => roleFrom('anonymous', 'role')).toThrow(TokenError)
  })

  it('reads fleets as one id, an array of ids, or * for all', () => {
    expect(fleetsFrom('demo', 'fleet')).toEqual(['demo'])
    expect(fleetsFrom(['b', 'a', 'b'], 'fleet')).toEqual(['a', 'b'])
    expect(fleetsFrom('*', 'fleet')).toBe('*')
    expect(fleetsFrom(['a', '*'], 'fleet')).toBe('*')
    for (const bad of [undefined, [], '', 'a/b', ['a', 7], 'fleet/#', { a: 1 }]) {
      expect(() => fleetsFrom(bad, 'fleet'), JSON.stringify(bad)).toThrow(
        expect.objectContaining({ code: 'token_claims' }),
      )
    }
  })
})

describe('the Principal of an OIDC token', () => {
  it('reads a Keycloak-style token: role from realm_access.roles, fleets from a custom claim', () => {
    const payload = {
      sub: '5f0c1c3e-7a1b-4c7e-9d55-2f8a1e0b9c11',
      exp: 1_900_000_000,
      realm_access: { roles: ['default-roles-skyline', 'offline_access', 'viewer'] },
      skyline_fleet: ['north', 'south'],
    }
    expect(oidcPrincipal(payload, keycloak)).toEqual({
      sub: '5f0c1c3e-7a1b-4c7e-9d55-2f8a1e0b9c11',
      role: 'viewer',
      fleets: ['north', 'south'],
      exp: 1_900_000_000,
      kind: 'oidc',
    })
  })

  it('gives an admin every fleet, with or without a fleet claim', () => {
    expect(oidcPrincipal({ sub: 'root', role: 'admin' }, paths).fleets).toBe('*')
    expect(oidcPrincipal({ sub: 'root', role: 'admin', fleet: 'a' }, paths).fleets).toBe('*')
  })

  it('refuses a drone of several fleets or of all, or whose sub is not an id', () => {
    const drone = { sub: 'd1', role: 'drone' }
    expect(oidcPrincipal({ ...drone, fleet: 'a' }, paths)).toMatchObject({ fleets: ['a'] })
    for (const payload of [
      { ...drone, fleet: ['a', 'b'] },
      { ...drone, fleet: '*' },
      { ...drone, sub: 'd1@example', fleet: 'a' },
    ]) {
      expect(() => oidcPrincipal(payload, paths)).toThrow(
        expect.objectContaining({ code: 'token_claims' }),
      )
    }
  })

  it('refuses a viewer without a fleet claim, and a token without a sub', () => {
    expect(() => oidcPrincipal({ sub: 'v', role: 'viewer' }, paths)).toThrow(/claim fleet/)
    expect(() => oidcPrincipal({ role: 'viewer', fleet: 'a' }, paths)).toThrow(/claim sub/)
  })
})
