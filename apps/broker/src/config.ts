import { z } from 'zod'
import { OIDC_ENV, withOidcRules } from '@skyline/auth'

/** A bad configuration value. Its message names the variable, so start-up can print it as is. */
export class ConfigError extends Error {
  readonly code = 'invalid_config'
}

/** A cluster name: it prefixes Redis keys and pub/sub channels, so it is kept plain. */
export const CLUSTER_NAME = /^[A-Za-z0-9_-]{1,64}$/

const port = z.coerce.number().int().min(0).max(65535)
const positiveInt = z.coerce.number().int().positive()
/** A claim name, or a dotted path into nested claims (`realm_access.roles`). */
const flag = z
  .enum(['true', 'false', '1', '0', ''])
  .default('false')
  .transform((v) => v === 'true' || v === '1')

const EnvSchema = withOidcRules(
  z
    .object({
      /** Address every listener binds to. Default all interfaces. */
      HOST: z.string().min(1).default('0.0.0.0'),
      /** MQTT over TCP. Default 1883; 0 picks a free port. */
      MQTT_PORT: port.default(1883),
      /** MQTT over WebSocket (path `/mqtt`, any path accepted). Default 8083. */
      MQTT_WS_PORT: port.default(8083),
      /** MQTT over TLS, only when TLS_CERT and TLS_KEY are set. Default 8883. */
      MQTTS_PORT: port.default(8883),
      /** PEM files for the TLS listener; both or neither. */
      TLS_CERT: z.string().min(1).optional(),
      TLS_KEY: z.string().min(1).optional(),
      /** Prometheus metrics and a health check over HTTP. Default 9101. */
      BROKER_METRICS_PORT: port.default(9101),
      /** HS256 secret that signs device tokens; at least 32 characters. */
      DEVICE_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
      /** Where the generated secret is kept when DEVICE_TOKEN_SECRET is unset. Default ./data. */
      DATA_DIR: z.string().min(1).default('./data'),
      /** Accept clients without a token (local experiments only). Default false. */
      MQTT_ALLOW_ANONYMOUS: flag,
      /** Redis for durable sessions, retained messages and several brokers per fleet. */
      REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
      /** Name of the brokers that share one Redis: prefixes every key and channel. Default skyline. */
      BROKER_CLUSTER: z
        .string()
        .regex(CLUSTER_NAME, 'must be 1-64 letters, digits, _ or -')
        .default('skyline'),
      /**
       * With REDIS_URL, on SIGTERM: seconds over which the clients are closed, without
       * their wills, to reconnect to another broker of the cluster; 0 closes them at
       * once. Default 5 s: with the close that follows, within Docker's 10 s stop timeout.
       */
      BROKER_DRAIN_S: z.coerce
        .number({ error: 'must be a number of seconds' })
        .min(0, 'must be 0 or more seconds')
        .max(3600, 'must be at most 3600 seconds')
        .default(5),
      /** Largest MQTT packet accepted, bytes. Default 64 KiB. */
      MQTT_MAX_PACKET_BYTES: positiveInt.max(268_435_455).default(65_536),
      /** Sustained publishes per second per identity (all its connections); 0 disables the limit. Default 100/s. */
      MQTT_RATE_LIMIT: z.coerce.number().min(0).default(100),
      /** Publishes an identity may send in a burst above the rate. Default 200. */
      MQTT_RATE_BURST: positiveInt.default(200),
      /** Concurrent connections; more get CONNACK 'server unavailable'. Default 20000. */
      MQTT_MAX_CONNECTIONS: positiveInt.default(20_000),
      /** Connections one drone or station identity may hold; a newer one closes the oldest. Default 1. */
      MQTT_CONNS_PER_DEVICE: positiveInt.default(1),
      /** The same for a viewer or service identity (and an anonymous client id). Default 10. */
      MQTT_CONNS_PER_USER: positiveInt.default(10),
      ...OIDC_ENV,
      LOG_LEVEL: z
        .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default('info'),
    })
    .refine((env) => (env.TLS_CERT === undefined) === (env.TLS_KEY === undefined), {
      message: 'TLS_CERT and TLS_KEY must be set together',
      path: ['TLS_CERT'],
    }),
)

export type BrokerConfig = z.infer<typeof EnvSchema>

/**
 * Reads the broker's configuration from an environment once. Empty strings count as
 * unset, so `MQTT_PORT= npm run broker` falls back to the default.
 * @throws ConfigError naming every bad variable.
 */
export function loadConfig(env: Record<string, string | undefined>): BrokerConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''))
  const result = EnvSchema.safeParse(present)
  if (!result.success) {
    const lines = result.error.issues.map(
      (i) => `${i.path.join('.') || 'environment'}: ${i.message}`,
    )
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`)
  }
  return result.data
}
