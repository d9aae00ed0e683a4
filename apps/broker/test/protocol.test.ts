import { describe, expect, it } from 'vitest'
import type { Packet } from 'mqtt-packet'
import { signDeviceToken } from '@skyline/auth'
import { SECRET, rawBrokerPerTest } from './helpers.ts'
import type { TestBroker } from './helpers.ts'
import type { RawClient } from './raw-client.ts'
import { generateWithBytes } from './raw-client.ts'

// MQTT 3.1.1 §1.5.3: a packet with ill-formed UTF-8 or U+0000 in a string, and §3.10.3
// (§3.8.3): an UNSUBSCRIBE (SUBSCRIBE) without topic filters, are protocol violations
// on which the server closes the connection. Raw bytes: no client library sends these.

const drone = { role: 'drone', sub: 'd1', fleet: 'f1' } as const

const { start, raw } = rawBrokerPerTest()

/** A raw connection authenticated as the drone d1 of fleet f1. */
async function connectedDrone(t: TestBroker): Promise<RawClient> {
  const r = await raw(t)
  r.sendConnect('d1', 'd1', Buffer.from(await signDeviceToken(SECRET, drone)))
  expect(await r.next()).toMatchObject({ cmd: 'connack', returnCode: 0 })
  return r
}

/** The broker closes the connection without answering (a PUBACK or SUBACK would resolve next()). */
async function expectClosed(r: RawClient): Promise<void> {
  await expect(r.next()).rejects.toThrow('connection closed')
}

const violations = (t: TestBroker, reason: string) =>
  t.broker.metrics.value(t.broker.metrics.disconnects, { reason })

const publish = (topic: string): Packet => ({
  cmd: 'publish',
  topic,
  payload: Buffer.from('{}'),
  qos: 1,
  messageId: 1,
  retain: false,
  dup: false,
})

// Each sequence is ill-formed per RFC 3629 / Unicode §3.9, as MQTT-1.5.3-1 requires.
const ILL_FORMED: [string, number[]][] = [
  ['a lead byte without its continuation', [0xc3, 0x28]],
  ['an overlong encoding of "/"', [0xc0, 0xaf]],
  ['an encoded UTF-16 surrogate (U+D800)', [0xed, 0xa0, 0x80]],
  ['bytes that never occur in UTF-8', [0xff, 0xfe]],
]

describe('ill-formed UTF-8 [MQTT-1.5.3-1]', () => {
  it.each(ILL_FORMED)('closes the connection on a PUBLISH topic with %s', async (_case, bytes) => {
    const t = await start()
    const r = await connectedDrone(t)
    const placeholder = '~'.repeat(bytes.length)
    r.sendBytes(
      generateWithBytes(
        publish(`fleet/f1/drones/d1/${placeholder}`),
        placeholder,
        Buffer.from(bytes),
      ),
    )
    await expectClosed(r)
    expect(await violations(t, 'invalid_utf8')).toBe(1)
  })

  it('closes the connection on a SUBSCRIBE filter with ill-formed UTF-8', async () => {
    const t = await start()
    const r = await connectedDrone(t)
    const subscribe: Packet = {
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [{ topic: 'fleet/f1/drones/~~/commands', qos: 1 }],
    }
    r.sendBytes(generateWithBytes(subscribe, '~~', Buffer.from([0xc3, 0x28])))
    await expectClosed(r)
    expect(await violations(t, 'invalid_utf8')).toBe(1)
  })

  it('closes the connection on a CONNECT whose client id is ill-formed, before any CONNACK', async () => {
    const t = await start()
    const r = await raw(t)
    const connect: Packet = {
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      keepalive: 30,
      clean: true,
      clientId: '~~',
      username: 'd1',
      password: Buffer.from(await signDeviceToken(SECRET, drone)),
    }
    r.sendBytes(generateWithBytes(connect, '~~', Buffer.from([0xed, 0xa0])))
    await expectClosed(r)
    expect(await violations(t, 'invalid_utf8')).toBe(1)
  })

  it('keeps a client that sends U+FFFD itself, well-formed', async () => {
    const t = await start()
    const r = await connectedDrone(t)
    r.send(publish('fleet/f1/drones/d1/\uFFFD'))
    // Not a topic of the contract: acknowledged and dropped, the connection stays.
    expect(await r.next()).toMatchObject({ cmd: 'puback', messageId: 1 })
    expect(await violations(t, 'invalid_utf8')).toBe(0)
  })
})

describe('U+0000 in a string [MQTT-1.5.3-2]', () => {
  const cases: [string, Packet][] = [
    ['a PUBLISH topic', publish('fleet/f1/drones/d1/telemetry\u0000')],
    [
      'a SUBSCRIBE filter',
      { cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: 'fleet/\u0000/#', qos: 0 }] },
    ],
    [
      'an UNSUBSCRIBE filter',
      { cmd: 'unsubscribe', messageId: 1, unsubscriptions: ['fleet/f1/drones/d1/\u0000'] },
    ],
  ]
  it.each(cases)('closes the connection on %s holding U+0000', async (_case, packet) => {
    const t = await start()
    const r = await connectedDrone(t)
    r.send(packet)
    await expectClosed(r)
    expect(await violations(t, 'null_character')).toBe(1)
  })
})

describe('will topics', () => {
  // Anonymous clients may leave a will anywhere under fleet/#: the ACL would accept
  // these topics, so only the string check stands between them and a published will.
  const cases: [string, string, number[]][] = [
    ['U+0000', 'null_character', [0x00]],
    ['ill-formed UTF-8', 'invalid_utf8', [0xc3]],
  ]
  it.each(cases)(
    'closes the connection on a will topic holding %s, before any CONNACK',
    async (_case, reason, bytes) => {
      const t = await start({ allowAnonymous: true })
      const r = await raw(t)
      const connect: Packet = {
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        keepalive: 30,
        clean: true,
        clientId: 'anon',
        will: { topic: 'fleet/f1/~', payload: Buffer.from('gone'), qos: 0, retain: false },
      }
      r.sendBytes(generateWithBytes(connect, '~', Buffer.from(bytes)))
      await expectClosed(r)
      expect(await violations(t, reason)).toBe(1)
    },
  )
})

describe('topic filters required [MQTT-3.10.3-2] [MQTT-3.8.3-3]', () => {
  it.each([
    ['UNSUBSCRIBE', 0xa2],
    ['SUBSCRIBE', 0x82],
  ])('closes the connection on an %s without topic filters', async (_name, header) => {
    const t = await start()
    const r = await connectedDrone(t)
    r.sendBytes(Buffer.from([header, 0x02, 0x00, 0x01])) // only the packet identifier
    await expectClosed(r)
    expect(await violations(t, 'no_topic_filters')).toBe(1)
  })
})
