import { randomBytes } from 'node:crypto'
import { connect as tcpConnect } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import type { IClientOptions, MqttClient } from 'mqtt'
import type { DeviceClaims } from '@skyline/auth'
import { collect, connectAs, nextMessage, optionsFor, startTestBroker } from './helpers.ts'

// Standard MQTT 3.1.1 behaviour that Skyline relies on, run with the same client
// code against the bundled broker and against the system Mosquitto (an independent
// implementation): if both pass, our clients speak MQTT, not "aedes".

const MOSQUITTO = { host: '127.0.0.1', port: 1883 }

function reachable({ host, port }: typeof MOSQUITTO): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port, timeout: 1_000 })
    socket.once('connect', () => resolve(socket.destroy() !== undefined))
    socket.once('error', () => resolve(false))
    socket.once('timeout', () => resolve(socket.destroy() === undefined))
  })
}

interface Target {
  url: string
  close(): Promise<void>
}

const targets: [string, () => Promise<Target>][] = [
  ['the bundled broker', async () => startTestBroker()],
]
if (await reachable(MOSQUITTO)) {
  targets.push([
    'the system Mosquitto',
    () =>
      Promise.resolve({
        url: `mqtt://${MOSQUITTO.host}:${MOSQUITTO.port}`,
        close: () => Promise.resolve(),
      }),
  ])
} else {
  // A machine without Mosquitto cannot run the comparison; CI's machine has one.
  console.warn(
    'Mosquitto is not reachable on 127.0.0.1:1883: the cross-broker suite runs on the bundled broker only',
  )
}

/** The command names of the packets `client` receives from now on. */
function received(client: MqttClient): string[] {
  const cmds: string[] = []
  client.on('packetreceive', (packet) => cmds.push(packet.cmd))
  return cmds
}

describe.each(targets)('standard MQTT against %s', (_name, start) => {
  let target: Target
  const clients: MqttClient[] = []
  // Mosquitto keeps retained messages and sessions across runs: a fresh fleet each run.
  const fleet = `t${randomBytes(4).toString('hex')}`
  const run = randomBytes(3).toString('hex')

  const connect = async (claims: DeviceClaims, options: IClientOptions = {}) => {
    const client = await connectAs(target.url, claims, {
      clientId: `${claims.sub}:${run}`,
      ...options,
    })
    clients.push(client)
    return client
  }
  const drone = (id: string): DeviceClaims => ({ role: 'drone', sub: id, fleet })
  const service = (id: string): DeviceClaims => ({ role: 'service', sub: id })
  const status = (id: string) => `fleet/${fleet}/drones/${id}/status`

  beforeAll(async () => {
    target = await start()
  })
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)))
    await target.close()
  })

  it('delivers QoS 1 with a PUBACK and QoS 1 on the way out', async () => {
    const sub = await connect(service('sub-q1'))
    await sub.subscribeAsync(`fleet/${fleet}/drones/+/events`, { qos: 1 })
    const pub = await connect(drone('q1'))
    const acks = received(pub)
    const arrival = nextMessage(sub)
    await pub.publishAsync(`fleet/${fleet}/drones/q1/events`, 'e1', { qos: 1 })
    expect(acks).toEqual(['puback'])
    const got = await arrival
    expect(got.payload).toBe('e1')
    expect(got.packet.qos).toBe(1)
  })

  it('delivers a QoS 0 publish to a QoS 1 subscription, at QoS 0', async () => {
    // The lesser of the two QoS [MQTT-3.8.4-6]; on persistent and clean sessions alike.
    for (const clean of [true, false]) {
      const sub = await connect(service(`sub-q0-${clean}`), { clean })
      await sub.subscribeAsync(`fleet/${fleet}/drones/+/telemetry`, { qos: 1 })
      const pub = await connect(drone(`q0-${clean}`))
      const arrival = nextMessage(sub)
      pub.publish(`fleet/${fleet}/drones/q0-${clean}/telemetry`, 't1', { qos: 0 })
      const got = await arrival
      expect(got.payload).toBe('t1')
      expect(got.packet.qos).toBe(0)
    }
  })

  it('delivers QoS 2 exactly once each, in order', async () => {
    const sub = await connect(service('sub-q2'))
    await sub.subscribeAsync(`fleet/${fleet}/drones/+/commands`, { qos: 2 })
    const pub = await connect(service('pub-q2'))
    const seen = collect(sub)
    const acks = received(pub)
    const count = 50
    for (let i = 0; i < count; i++) {
      await pub.publishAsync(`fleet/${fleet}/drones/x/commands`, String(i), { qos: 2 })
    }
    expect(acks).toEqual(Array.from({ length: count }, () => ['pubrec', 'pubcomp']).flat())
    // A sentinel after the burst: everything before it has arrived once it has.
    const sentinel = nextMessage(sub, () => seen.at(-1)?.payload === 'end')
    await pub.publishAsync(`fleet/${fleet}/drones/x/commands`, 'end', { qos: 2 })
    await sentinel
    expect(seen.map((m) => m.payload)).toEqual([
      ...Array.from({ length: count }, (_, i) => String(i)),
      'end',
    ])
    expect(seen.every((m) => m.packet.qos === 2)).toBe(true)
  })

  it('keeps a persistent session: QoS 1 published while away arrives after reconnecting', async () => {
    const options: IClientOptions = { clean: false, clientId: `ingest:${run}` }
    const first = await connect(service('ingest'), options)
    await first.subscribeAsync(`fleet/${fleet}/drones/+/events`, { qos: 1 })
    await first.endAsync()
    const pub = await connect(drone('away'))
    for (let i = 0; i < 5; i++)
      await pub.publishAsync(`fleet/${fleet}/drones/away/events`, `m${i}`, { qos: 1 })

    // Listeners go on before CONNACK: the queued messages follow it at once.
    const second = mqtt.connect(target.url, await optionsFor(service('ingest'), options))
    clients.push(second)
    const seen = collect(second)
    const connack = new Promise<boolean>((resolve) =>
      second.once('connect', (p) => resolve(p.sessionPresent)),
    )
    const allFive = nextMessage(second, () => seen.length === 5)
    expect(await connack).toBe(true)
    await allFive
    expect(seen.map((m) => m.payload)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4'])
  })

  it('gives a subscriber to the exact topic the retained message, until an empty payload clears it', async () => {
    const d = await connect(drone('ret'))
    await d.publishAsync(status('ret'), 'kept', { qos: 1, retain: true })
    const first = await connect(service('ret-1'))
    const kept = nextMessage(first)
    await first.subscribeAsync(status('ret'), { qos: 1 })
    expect((await kept).payload).toBe('kept')

    await d.publishAsync(status('ret'), '', { qos: 1, retain: true })
    // A live message afterwards: a retained one would have arrived before it.
    const second = await connect(service('ret-2'))
    const seen = collect(second)
    await second.subscribeAsync([status('ret'), `fleet/${fleet}/drones/ret/events`], { qos: 1 })
    const sentinel = nextMessage(second, (t) => t.endsWith('/events'))
    await d.publishAsync(`fleet/${fleet}/drones/ret/events`, 'after', { qos: 1 })
    await sentinel
    expect(seen.map((m) => m.payload)).toEqual(['after'])
  })

  it('publishes a retained last will when a drone vanishes, and a late subscriber gets it', async () => {
    const watcher = await connect(service('watch-lwt'))
    await watcher.subscribeAsync(status('lwt'), { qos: 1 })
    const d = await connect(drone('lwt'), {
      will: {
        topic: status('lwt'),
        payload: Buffer.from('{"online":false}'),
        qos: 1,
        retain: true,
      },
    })
    await d.publishAsync(status('lwt'), '{"online":true}', { qos: 1, retain: true })
    await nextMessage(watcher, () => true)

    const will = nextMessage(watcher)
    d.stream.destroy() // the socket dies without a DISCONNECT
    expect((await will).payload).toBe('{"online":false}')

    const late = await connect(service('late-lwt'))
    const retained = nextMessage(late)
    await late.subscribeAsync(status('lwt'), { qos: 1 })
    const got = await retained
    expect(got.payload).toBe('{"online":false}')
    expect(got.packet.retain).toBe(true)
  })

  it('does not publish the will after a clean DISCONNECT', async () => {
    const watcher = await connect(service('watch-clean'))
    await watcher.subscribeAsync(`fleet/${fleet}/drones/clean/#`, { qos: 1 })
    const seen = collect(watcher)
    const d = await connect(drone('clean'), {
      will: { topic: status('clean'), payload: Buffer.from('offline'), qos: 1, retain: true },
    })
    await d.publishAsync(status('clean'), 'online', { qos: 1, retain: true })
    await d.endAsync()
    // The same device comes back under the same client id: by then the broker has
    // finished with the old connection, so a will would already be out.
    const again = await connect(drone('clean'))
    const sentinel = nextMessage(watcher, (t) => t.endsWith('/events'))
    await again.publishAsync(`fleet/${fleet}/drones/clean/events`, 'back', { qos: 1 })
    await sentinel
    expect(seen.map((m) => m.payload)).toEqual(['online', 'back'])
  })
})
