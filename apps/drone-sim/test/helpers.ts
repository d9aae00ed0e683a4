import { connectAsync } from 'mqtt'
import type { MqttClient } from 'mqtt'
import { signDeviceToken } from '@skyline/auth'
import { createBroker, startListeners } from '@skyline/broker'
import type { BrokerMetrics } from '@skyline/broker'
import { decodePayload, parseTopic, topicKind } from '@skyline/schemas'
import { signedTokens } from '../src/credentials.ts'
import { Fleet } from '../src/fleet.ts'
import type { FleetOptions } from '../src/fleet.ts'

export const SECRET = 'sim-test-secret-at-least-32-characters'

export interface TestBroker {
  url: string
  metrics: BrokerMetrics
  close(): Promise<void>
}

/** The bundled broker on an ephemeral port, with its default limits. */
export async function startBroker(): Promise<TestBroker> {
  const broker = await createBroker({ tokenSecret: SECRET })
  const listening = await startListeners(broker, { host: '127.0.0.1', mqttPort: 0 })
  return {
    url: `mqtt://127.0.0.1:${listening.mqtt.port}`,
    metrics: broker.metrics,
    close: () => listening.close(),
  }
}

export function fleetOptions(url: string, overrides: Partial<FleetOptions> = {}): FleetOptions {
  return {
    url,
    fleetId: 'test',
    drones: 2,
    stations: 2,
    center: { lat: 48.8566, lon: 2.3522 },
    radiusKm: 2,
    rateHz: 5,
    telemetryQos: 0,
    chaosPerMin: 0,
    timeScale: 1,
    demandPerMin: 0,
    patrol: false,
    keepaliveS: 10,
    seed: 1,
    tokens: signedTokens(SECRET),
    ...overrides,
  }
}

export interface Seen {
  topic: string
  text: string
  json: Record<string, unknown>
  retain: boolean
}

/** A service client that records everything under `fleet/<fleetId>/#` and can wait for a message. */
export class Watcher {
  readonly seen: Seen[] = []
  private waiters: { match: (m: Seen) => boolean; resolve: (m: Seen) => void }[] = []

  private constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      const text = payload.toString()
      const m: Seen = {
        topic,
        text,
        json: JSON.parse(text) as Record<string, unknown>,
        retain: packet.retain,
      }
      this.seen.push(m)
      this.waiters = this.waiters.filter((w) => !(w.match(m) && (w.resolve(m), true)))
    })
  }

  static async start(url: string, fleetId: string, id = 'watcher'): Promise<Watcher> {
    const client = await connectAsync(url, {
      clientId: id,
      username: id,
      password: await signDeviceToken(SECRET, { role: 'service', sub: id }),
      reconnectPeriod: 0,
    })
    const watcher = new Watcher(client)
    await client.subscribeAsync(`fleet/${fleetId}/#`, { qos: 2 })
    return watcher
  }

  /** The first message, seen already or to come, that matches; rejects after `timeoutMs`. */
  next(match: (m: Seen) => boolean, timeoutMs = 10_000): Promise<Seen> {
    const already = this.seen.find(match)
    if (already) return Promise.resolve(already)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching message within ${timeoutMs} ms`)),
        timeoutMs,
      )
      this.waiters.push({ match, resolve: (m) => (clearTimeout(timer), resolve(m)) })
    })
  }

  /** Messages on one drone's or station's channel, e.g. ('drone-1', 'events'). */
  on(id: string, channel: string): Seen[] {
    return this.seen.filter((m) => m.topic.endsWith(`/${id}/${channel}`))
  }

  /** Every message that does not decode with the contract's schema for its topic. */
  invalid(): { topic: string; reason: string }[] {
    return this.seen.flatMap((m) => {
      const addr = parseTopic(m.topic)
      if (addr === null) return [{ topic: m.topic, reason: 'not a contract topic' }]
      const decoded = decodePayload(topicKind(addr), m.text)
      return decoded.ok ? [] : [{ topic: m.topic, reason: decoded.reason }]
    })
  }

  close(): Promise<void> {
    return this.client.endAsync(true)
  }
}

/** Starts a fleet and stops it after the test. */
export async function withFleet(
  options: FleetOptions,
  stopAll: (() => Promise<void>)[],
): Promise<Fleet> {
  const fleet = await Fleet.start(options)
  stopAll.push(() => fleet.stop())
  return fleet
}
