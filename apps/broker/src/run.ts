// What `npm run broker` runs (after main.ts): reads the configuration, wires the broker
// and its listeners, and shuts them down cleanly on SIGINT/SIGTERM.
import { readFileSync } from 'node:fs'
import { pino } from 'pino'
import { createBroker } from './broker.ts'
import { ConfigError, loadConfig } from './config.ts'
import { PortInUseError, startListeners } from './listeners.ts'
import { BrokerMetrics } from './metrics.ts'
import { oidcOptions, resolveTokenSecret } from '@skyline/auth'

/** How long closing may take after the drain before the process exits anyway, ms. */
const CLOSE_BOUND_MS = 4_000

async function main(): Promise<void> {
  const config = loadConfig(process.env)
  const log = pino({ level: config.LOG_LEVEL, base: { app: 'broker' } })
  if (config.MQTT_ALLOW_ANONYMOUS) {
    log.warn(
      'MQTT_ALLOW_ANONYMOUS=true: clients without a token may publish and subscribe anywhere under fleet/#. ' +
        'Use this for local experiments only, never on a network you do not control.',
    )
  }
  const broker = await createBroker({
    tokenSecret: resolveTokenSecret(config.DEVICE_TOKEN_SECRET, config.DATA_DIR),
    oidc: oidcOptions(config),
    allowAnonymous: config.MQTT_ALLOW_ANONYMOUS,
    maxPacketBytes: config.MQTT_MAX_PACKET_BYTES,
    rateLimit:
      config.MQTT_RATE_LIMIT > 0
        ? { ratePerS: config.MQTT_RATE_LIMIT, burst: config.MQTT_RATE_BURST }
        : null,
    maxConnections: config.MQTT_MAX_CONNECTIONS,
    connectionsPerIdentity: {
      device: config.MQTT_CONNS_PER_DEVICE,
      user: config.MQTT_CONNS_PER_USER,
    },
    redisUrl: config.REDIS_URL,
    cluster: config.BROKER_CLUSTER,
    metrics: new BrokerMetrics(true),
    logger: log,
  })
  let listening
  try {
    listening = await startListeners(broker, {
      host: config.HOST,
      mqttPort: config.MQTT_PORT,
      wsPort: config.MQTT_WS_PORT,
      tls:
        config.TLS_CERT !== undefined && config.TLS_KEY !== undefined
          ? {
              port: config.MQTTS_PORT,
              cert: readFileSync(config.TLS_CERT),
              key: readFileSync(config.TLS_KEY),
            }
          : undefined,
      metricsPort: config.BROKER_METRICS_PORT,
      maxWsPayloadBytes: config.MQTT_MAX_PACKET_BYTES + 16,
      // Room above the CONNECT limit for sockets that are refused with a CONNACK.
      maxSockets: config.MQTT_MAX_CONNECTIONS + 1_000,
      onError: (err, variable) =>
        log.error({ err: err.message, listener: variable }, 'listener error'),
    })
  } catch (err) {
    await broker.close()
    throw err
  }
  log.info(
    {
      mqtt: listening.mqtt.port,
      ws: listening.ws?.port,
      mqtts: listening.tls?.port,
      metrics: listening.metrics?.port,
      persistence: config.REDIS_URL ? 'redis' : 'memory',
      oidcIssuer: config.OIDC_ISSUER,
    },
    'broker listening',
  )

  // SIGTERM (docker stop, a rolling restart) with Redis: another broker of the cluster
  // holds the same sessions, so the clients are handed over to it (drain) rather than
  // dropped with their wills. SIGINT (Ctrl-C), or no Redis: close at once.
  const drainMs = config.REDIS_URL ? config.BROKER_DRAIN_S * 1000 : undefined
  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    const drain = signal === 'SIGTERM' ? drainMs : undefined
    log.info({ signal, drainS: drain === undefined ? undefined : drain / 1000 }, 'shutting down')
    // Past the drain and this bound, something hangs (Redis gone): exit rather than
    // wait for the orchestrator's SIGKILL.
    setTimeout(
      () => {
        log.error({ boundMs: CLOSE_BOUND_MS }, 'shutdown did not finish in time: exiting')
        process.exit(1)
      },
      (drain ?? 0) + CLOSE_BOUND_MS,
    ).unref()
    const closing = drain === undefined ? listening.close() : listening.drain(drain)
    closing.then(
      () => {
        log.info('stopped')
        process.exit(0)
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

main().catch((err: unknown) => {
  // A bad configuration or a taken port is the user's to fix: say what, without a stack.
  if (err instanceof ConfigError || err instanceof PortInUseError) {
    console.error(`broker: ${err.message}`)
  } else {
    console.error('broker: failed to start:', err)
  }
  process.exit(1)
})
