import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createBroker, startListeners, PortInUseError } from '../src/index.ts'
import type { Listening } from '../src/index.ts'
import { SECRET, connectAs, nextMessage } from './helpers.ts'

let listening: Listening | undefined
afterEach(async () => {
  await listening?.close()
  listening = undefined
})

/** A self-signed certificate for localhost, made by the system openssl. */
function selfSigned(): { cert: Buffer; key: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'skyline-tls-'))
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  )
  return { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) }
}

describe('listeners', () => {
  it('serves the same broker over TCP, WebSocket and TLS, with metrics over HTTP', async () => {
    const broker = await createBroker({ tokenSecret: SECRET })
    const { cert, key } = selfSigned()
    listening = await startListeners(broker, {
      host: '127.0.0.1',
      mqttPort: 0,
      wsPort: 0,
      metricsPort: 0,
      tls: { port: 0, cert, key },
    })
    const sub = await connectAs(`mqtt://127.0.0.1:${listening.mqtt.port}`, {
      role: 'service',
      sub: 'tcp',
    })
    await sub.subscribeAsync('fleet/f1/#', { qos: 1 })

    const overWs = await connectAs(`ws://127.0.0.1:${listening.ws!.port}/mqtt`, {
      role: 'drone',
      sub: 'ws1',
      fleet: 'f1',
    })
    const overTls = await connectAs(
      `mqtts://127.0.0.1:${listening.tls!.port}`,
      { role: 'drone', sub: 'tls1', fleet: 'f1' },
      { ca: cert },
    )
    for (const [client, id] of [
      [overWs, 'ws1'],
      [overTls, 'tls1'],
    ] as const) {
      const arrival = nextMessage(sub, (t) => t.includes(`/${id}/`))
      await client.publishAsync(`fleet/f1/drones/${id}/telemetry`, id, { qos: 1 })
      expect((await arrival).payload).toBe(id)
    }

    const metrics = await (
      await fetch(`http://127.0.0.1:${listening.metrics!.port}/metrics`)
    ).text()
    expect(metrics).toMatch(/^skyline_broker_connections 3$/m)
    expect(metrics).toMatch(/^skyline_broker_messages_in_total\{qos="1"\} 2$/m)
    const health = await fetch(`http://127.0.0.1:${listening.metrics!.port}/health`)
    expect(health.status).toBe(200)
    await Promise.all([sub, overWs, overTls].map((c) => c.endAsync()))
  })

  it('refuses a TLS client that does not trust the certificate', async () => {
    const broker = await createBroker({ tokenSecret: SECRET })
    const { cert, key } = selfSigned()
    listening = await startListeners(broker, {
      host: '127.0.0.1',
      mqttPort: 0,
      tls: { port: 0, cert, key },
    })
    await expect(
      connectAs(`mqtts://127.0.0.1:${listening.tls!.port}`, {
        role: 'drone',
        sub: 'd1',
        fleet: 'f1',
      }),
    ).rejects.toThrow(/self-signed|certificate/i)
  })

  it('names the variable that moves a port that is taken, and leaves nothing open', async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const port = (taken.address() as AddressInfo).port
    const broker = await createBroker({ tokenSecret: SECRET })
    try {
      const starting = startListeners(broker, { host: '127.0.0.1', mqttPort: 0, wsPort: port })
      await expect(starting).rejects.toBeInstanceOf(PortInUseError)
      await expect(starting).rejects.toThrow(
        `port ${port} is already in use: set MQTT_WS_PORT to a free port`,
      )
      expect(broker.aedes.closed).toBe(true)
    } finally {
      taken.close()
    }
  })
})
