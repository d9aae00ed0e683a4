import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it, vi } from 'vitest'
import app from '../src/app.ts'
import { loadConfig } from '../src/config.ts'
import type { Database } from '../src/db/client.ts'
import { DATABASES, SECRET, WAIT, startBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

// Issue 14, item 1: /api/ready said the ingest was fine while the broker had never
// acknowledged its subscriptions, so nothing was stored. The broker here is real; the
// test only decides when (or whether) its authorizeSubscribe hook answers.
describe('readiness and the ingest subscriptions', () => {
  let broker: TestBroker
  let database: Database
  let api: FastifyInstance | undefined

  afterEach(async () => {
    await api?.close()
    await database.close()
    await broker.close()
  })

  async function start(hold: (answer: () => void, refuse: () => void) => void) {
    broker = await startBroker()
    const aedes = broker.broker.aedes
    const authorize = aedes.authorizeSubscribe.bind(aedes)
    aedes.authorizeSubscribe = (client, sub, done) =>
      hold(
        () => authorize(client, sub, done),
        () => done(null, null),
      )
    database = await DATABASES[0]![1]()
    const config = loadConfig({ MQTT_URL: broker.url, LOG_LEVEL: 'silent' })
    api = Fastify({ logger: false })
    await api.register(app, { config, database, tokenSecret: SECRET })
    await api.ready()
    return api
  }
  const ready = async (fastify: FastifyInstance) => {
    const res = await fastify.inject({ method: 'GET', url: '/api/ready' })
    return { status: res.statusCode, ...res.json<{ checks: Record<string, boolean> }>() }
  }

  it('is not ready while the broker has not acknowledged the subscriptions', async () => {
    const held: (() => void)[] = []
    const fastify = await start((answer) => held.push(answer))
    await vi.waitFor(() => expect(held.length).toBeGreaterThan(0), WAIT)
    expect(fastify.mqtt.client.connected).toBe(true)
    expect(await ready(fastify)).toMatchObject({
      status: 503,
      checks: { broker: true, subscribed: false },
    })

    await vi.waitFor(() => expect(held.length).toBe(5), WAIT)
    held.forEach((answer) => answer())
    await vi.waitFor(
      async () =>
        expect(await ready(fastify)).toMatchObject({ status: 200, checks: { subscribed: true } }),
      WAIT,
    )
  })

  it('is not ready when the broker refuses a subscription', async () => {
    const held: [() => void, () => void][] = []
    const fastify = await start((answer, refuse) => held.push([answer, refuse]))
    await vi.waitFor(() => expect(held.length).toBe(5), WAIT)
    const suback = new Promise((resolve) =>
      fastify.mqtt.client.on('packetreceive', (p) => p.cmd === 'suback' && resolve(p)),
    )
    held.forEach(([answer, refuse], i) => (i === 1 ? refuse() : answer()))
    expect(await suback).toMatchObject({ granted: [1, 128, 1, 1, 1] })
    expect(await ready(fastify)).toMatchObject({
      status: 503,
      checks: { broker: true, subscribed: false },
    })
  })
})
