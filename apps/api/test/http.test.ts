import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import type { Database } from '../src/db/client.ts'
import { DATABASES, buildApi, get, startBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Bad requests get a 4xx with `{ error: { code, message } }`, never a 5xx or a stack.
describe('HTTP errors', () => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance

  beforeAll(async () => {
    broker = await startBroker()
    database = await DATABASES[0]![1]()
    api = await buildApi(broker.url, database)
  })
  afterAll(async () => {
    await api.close()
    await database.close()
    await broker.close()
  })

  it.each([
    ['/api/drones/a%2Fb', 400, 'bad_request'],
    ['/api/drones/' + 'x'.repeat(65), 400, 'bad_request'],
    ['/api/drones/nobody', 404, 'not_found'],
    ['/api/drones/nobody/track', 404, 'not_found'],
    ['/api/drones?fleet=a+b', 400, 'bad_request'],
    ['/api/drones/d1/track?format=kml', 400, 'bad_request'],
    ['/api/drones/d1/track?from=yesterday', 400, 'bad_request'],
    ['/api/stations/%24SYS', 400, 'bad_request'],
    ['/api/stations/nowhere', 404, 'not_found'],
    ['/api/nothing-here', 404, 'not_found'],
  ])('GET %s answers %i %s', async (url, status, code) => {
    const res = await get(api, url)
    expect(res.statusCode).toBe(status)
    const body = res.json<{ error: { code: string; message: string } }>()
    expect(body.error.code).toBe(code)
    expect(body.error.message.length).toBeGreaterThan(0)
    expect(res.body).not.toMatch(/at .*\.ts:\d+/) // no stack trace
  })

  it('names the bad parameter', async () => {
    const res = await get(api, '/api/drones/d1/track?format=kml')
    expect(res.json<{ error: { message: string } }>().error.message).toMatch(/format/)
  })

  it('is ready when the database and the broker are reachable', async () => {
    const res = await api.inject({ method: 'GET', url: '/api/ready' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({
      ready: true,
      role: 'leader', // the only instance leads
      instance: api.instanceId,
      checks: { database: true, broker: true, subscribed: true, ingest: true },
    })
  })

  it('documents every route in OpenAPI at /docs', async () => {
    const res = await api.inject({ method: 'GET', url: '/docs/json' })
    expect(res.statusCode).toBe(200)
    const paths = Object.keys(res.json<{ paths: Record<string, unknown> }>().paths)
    expect(paths).toEqual(
      expect.arrayContaining([
        '/api/fleet',
        '/api/drones',
        '/api/drones/{id}',
        '/api/drones/{id}/track',
        '/api/stations',
        '/api/stations/{id}',
        '/api/stats',
        '/api/health',
        '/api/deliveries',
        '/api/deliveries/{id}',
        '/api/deliveries/{id}/cancel',
        '/api/geofences',
        '/api/geofences/{id}',
        '/api/ready',
      ]),
    )
  })
})
