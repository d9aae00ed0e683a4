import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { signDeviceToken } from '@skyline/auth'
import { Connection } from '../src/connection.ts'
import { SECRET, Watcher, startBroker } from './helpers.ts'
import type { TestBroker } from './helpers.ts'

const WAIT = { timeout: 10_000, interval: 25 }

describe('a device connection', () => {
  let broker: TestBroker
  let watcher: Watcher
  let conn: Connection | undefined

  beforeEach(async () => {
    broker = await startBroker()
    watcher = await Watcher.start(broker.url, 'c1')
  })
  afterEach(async () => {
    await conn?.close()
    await watcher.close()
    await broker.close()
  })

  it('sends the QoS 1 messages published while it was away once it is back', async () => {
    // mqtt.js's reconnect() starts with empty stores unless it is given the old ones.
    const opened = await Connection.open(
      broker.url,
      {
        clientId: 'c1.drone-1',
        username: 'drone-1',
        password: await signDeviceToken(SECRET, { role: 'drone', sub: 'drone-1', fleet: 'c1' }),
        clean: false,
      },
      () => {},
    )
    conn = opened
    await opened.client.publishAsync('fleet/c1/drones/drone-1/events', JSON.stringify({ seq: 0 }), {
      qos: 1,
    })
    await expect.poll(() => watcher.seen.length, WAIT).toBeGreaterThan(0)
    expect(opened.dropFor(300)).toBe(true)
    await expect.poll(() => opened.connected, WAIT).toBe(false)
    const events = [1, 2, 3].map((seq) =>
      opened.client.publishAsync('fleet/c1/drones/drone-1/events', JSON.stringify({ seq }), {
        qos: 1,
      }),
    )
    await expect
      .poll(() => watcher.on('drone-1', 'events').map((m) => m.json.seq), WAIT)
      .toEqual([0, 1, 2, 3])
    await Promise.all(events) // each acknowledged (PUBACK) on the new connection
  })
})
