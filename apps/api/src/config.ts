import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import { OIDC_CLIENT_ENV, OIDC_ENV, withOidcClientRules, withOidcRules } from '@skyline/auth'
import { ALERT_ENV, withAlertRules } from './alerts/env.ts'

/** A bad configuration value. Its message names the variable. */
export class ConfigError extends Error {
  readonly code = 'invalid_config'
}

const int = z.coerce.number().int()

/** proxy-addr's named ranges (Fastify's trustProxy passes TRUST_PROXY to it). */
const TRUST_PROXY_RANGES = ['loopback', 'linklocal', 'uniquelocal']

/**
 * A comma-separated list of web origins (`scheme://host[:port]`), each normalised as a
 * browser writes its Origin header (lower-case host, no default port, no path).
 */
const origins = z.string().transform((value, ctx) => {
  const out: string[] = []
  for (const entry of value.split(',').map((e) => e.trim())) {
    if (entry === '') continue // `a,b,` from a template with an empty part (docker-compose.yml)
    const url = URL.canParse(entry) ? new URL(entry) : undefined
    if (
      url === undefined ||
      !['http:', 'https:'].includes(url.protocol) ||
      url.pathname !== '/' ||
      url.search !== '' ||
      url.hash !== '' ||
      url.username !== ''
    ) {
      ctx.addIssue({
        code: 'custom',
        message: `${entry} is not an origin: http(s)://host[:port], nothing after it`,
      })
      return z.NEVER
    }
    out.push(url.origin)
  }
  if (out.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'lists no origin' })
    return z.NEVER
  }
  return out
})

const EnvSchema = withAlertRules(
  withOidcClientRules(
    withOidcRules(
      z.object({
        ...OIDC_ENV,
        // Alerts (issue 18): thresholds and the webhook.
        ...ALERT_ENV,
        // The api's own MQTT token from the issuer, instead of one it signs.
        ...OIDC_CLIENT_ENV,
        /**
         * The map's client id at OIDC_ISSUER: a public client (no secret) of the authorization
         * code flow with PKCE. With it the map offers to sign in there. Default none: the map
         * takes pasted tokens only.
         */
        OIDC_WEB_CLIENT_ID: z
          .string()
          .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1 to 255 visible ASCII characters, no space')
          .optional(),
        /** Scopes the map asks the issuer for, space-separated (RFC 6749 §3.3). Default openid. */
        OIDC_WEB_SCOPE: z
          .string()
          .regex(
            /^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/,
            'must be scope names separated by single spaces (RFC 6749 §3.3), such as `openid profile`',
          )
          .default('openid'),
        HOST: z.string().min(1).default('0.0.0.0'),
        /** REST, live stream, OpenAPI, metrics and the web app. Default 3000. */
        HTTP_PORT: int.min(0).max(65_535).default(3000),
        /** The broker the ingest subscribes to. Default mqtt://localhost:1883. */
        MQTT_URL: z.url({ protocol: /^(mqtts?|wss?)$/ }).default('mqtt://localhost:1883'),
        /** Client id of the ingest's persistent session; one per api deployment. Default skyline-api. */
        API_MQTT_CLIENT_ID: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,64}$/)
          .default('skyline-api'),
        /**
         * This instance's name among the api instances on one database (the leader lease's
         * holder, its command connection's client id). Default: host name, process id and a
         * random suffix, new at each start.
         */
        API_INSTANCE_ID: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits, _ . or -')
          .optional(),
        /**
         * How long the leader's lease holds without renewal, s: a survivor takes over the
         * ingest and the dispatcher this long after the leader died at the latest. Default 10.
         */
        LEADER_LEASE_S: int.min(2).max(300).default(10),
        /** Postgres; absent: embedded PGlite under DATA_DIR. */
        DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
        /**
         * A file holding the password of DATABASE_URL's user, which then has none (see
         * withDatabasePassword). Default none.
         */
        DATABASE_PASSWORD_FILE: z.string().min(1).optional(),
        DATA_DIR: z.string().min(1).default('./data'),
        /** Secret that signs device tokens (the api signs its own service token). */
        DEVICE_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
        /** A drone silent this long is marked stale, s. Default 30. */
        STALE_AFTER_S: int.positive().default(30),
        /** An assignment a drone has not accepted after this long goes to another drone, s. Default 20. */
        ACCEPT_TIMEOUT_S: int.positive().default(20),
        /**
         * A requested delivery whose route crosses an active no-fly zone waits this long for
         * the zone to be lifted, then fails `route_blocked`, s; 0: at once. Default 300.
         */
        ROUTE_BLOCKED_TIMEOUT_S: int.min(0).max(86_400).default(300),
        /**
         * A delivery whose drone has not been heard for this long is resolved without it: back
         * to requested before the pick-up, failed (`drone_lost`) after, s. Default 120.
         */
        DELIVERY_LOST_AFTER_S: int.positive().default(120),
        /** Days of telemetry kept; older daily partitions are dropped, older points refused. Default 30. */
        TELEMETRY_RETENTION_DAYS: int.positive().default(30),
        /**
         * Largest lead of a device's `ts` over the time the api receives the message, s; a
         * message further ahead is a dead letter (ingest/device-clock.ts). Default 300.
         */
        DEVICE_CLOCK_AHEAD_MAX_S: int.positive().default(300),
        /** Messages written per transaction at most. Default 2000. */
        INGEST_BATCH_MAX: int.positive().max(20_000).default(2_000),
        /** Longest a message waits for its batch, ms. Default 50. */
        INGEST_BATCH_DELAY_MS: int.min(0).max(10_000).default(50),
        /**
         * Longest a REST read (GET under /api) may take before it answers 503 `timeout`, ms.
         * Default 2000: a slow or unreachable database must not hold clients (issue #14).
         */
        REST_READ_TIMEOUT_MS: int.positive().max(600_000).default(2_000),
        /** The built web map (apps/web/dist), served at `/`. */
        WEB_DIR: z
          .string()
          .min(1)
          .default(fileURLToPath(new URL('../../web/dist', import.meta.url))),
        /** Map tiles, a Leaflet URL template; `none` shows no tiles (the map still works). */
        MAP_TILE_URL: z
          .string()
          .refine((v) => v === 'none' || /^https?:\/\/.*\{z\}.*\{x\}.*\{y\}/.test(v), {
            message: 'must be `none` or an http(s) URL template with {z}, {x} and {y}',
          })
          .default('https://tile.openstreetmap.org/{z}/{x}/{y}.png'),
        /** Credit shown for the tiles (HTML). */
        MAP_TILE_ATTRIBUTION: z
          .string()
          .default('&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>'),
        /**
         * Web origins whose pages may open the live stream (the map's address as the browser
         * shows it), comma-separated. Default: the addresses the api listens on (see
         * liveOrigins). Requests without an Origin (not a browser) are not concerned.
         */
        PUBLIC_ORIGIN: origins.optional(),
        /**
         * The reverse proxies in front of the api, comma-separated addresses, CIDR ranges
         * (e.g. 10.0.0.0/8) or the names of proxy-addr's ranges (`loopback`, `linklocal`,
         * `uniquelocal`: 10/8, 172.16/12, 192.168/16 and fc00::/7, a container network's
         * proxy whose address Docker picks): a request from one of them is the client's
         * named in its X-Forwarded-For. Default none: every request is its peer's (behind a
         * proxy, all clients then share one address for the per-address limits).
         */
        TRUST_PROXY: z
          .string()
          .default('')
          .transform((v, ctx) => {
            const entries = v
              .split(',')
              .map((e) => e.trim())
              .filter((e) => e !== '')
            for (const e of entries) {
              if (TRUST_PROXY_RANGES.includes(e)) continue
              const [address = '', prefix, ...rest] = e.split('/')
              const family = isIP(address)
              const bits = family === 6 ? 128 : 32
              const prefixOk =
                prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= bits)
              if (family === 0 || !prefixOk || rest.length > 0) {
                ctx.addIssue({
                  code: 'custom',
                  message: `${e} is not an address, a CIDR range or one of ${TRUST_PROXY_RANGES.join(', ')}`,
                })
                return z.NEVER
              }
            }
            return entries
          }),
        /** Live stream clients at once, at most; more are refused (503). Default 1,000. */
        LIVE_MAX_CLIENTS: int.positive().default(1_000),
        /** Live stream clients from one remote address at once, at most (429). Default 50. */
        LIVE_MAX_CLIENTS_PER_ADDRESS: int.positive().default(50),
        /**
         * Bytes sent to a live client that it has not yet confirmed reading (by answering the
         * ping behind them), beyond its snapshot, at most; past it the client is dropped.
         * Default 1 MiB: two frames of a 10,000-drone fleet seen whole. It is also what the
         * kernel may hold for a client that stopped reading before it is dropped.
         */
        LIVE_SEND_BUDGET_BYTES: int.min(64 * 1024).default(1024 * 1024),
        /** Longest a live client may leave a ping unanswered, ms; then it is dropped. Default 5,000. */
        LIVE_MAX_LAG_MS: int.min(500).max(600_000).default(5_000),
        /**
         * How long a live client has to sign in (its first message, `{"type":"auth","token"}`),
         * ms; then it is closed with 4401. Default 5,000. It holds a client's place meanwhile.
         */
        LIVE_AUTH_TIMEOUT_MS: int.min(100).max(60_000).default(5_000),
        /**
         * Writes (POST, PATCH, DELETE under /api) one principal may make a minute, at most; more are answered
         * 429 `rate_limited`. Default 60. Reads are not limited.
         */
        RATE_LIMIT_WRITES_PER_MIN: int.positive().max(1_000_000).default(60),
        /**
         * Tokens that do not verify one address may send a minute, at most; past them, every
         * request of that address that needs a token is answered 429 until the minute is out.
         * Default 20.
         */
        RATE_LIMIT_AUTH_FAILURES_PER_MIN: int.positive().max(1_000_000).default(20),
        LOG_LEVEL: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info'),
      }),
    ),
  ),
)
  .refine((env) => env.OIDC_WEB_CLIENT_ID === undefined || env.OIDC_ISSUER !== undefined, {
    message: 'needs OIDC_ISSUER: the map signs in there',
    path: ['OIDC_WEB_CLIENT_ID'],
  })
  .transform(withDatabasePassword)

export type ApiConfig = z.infer<typeof EnvSchema>

/**
 * DATABASE_PASSWORD_FILE's content (less trailing line breaks) as the password in
 * DATABASE_URL. The `_FILE` convention of the postgres image: docker compose generates
 * the password into a volume on the first run (deploy/secrets-init.sh), and the api and
 * Postgres read the same file, so the password never passes through the environment and
 * any character may be in it (it is percent-encoded here, and postgres.js decodes it).
 */
function withDatabasePassword<
  E extends { DATABASE_URL?: string | undefined; DATABASE_PASSWORD_FILE?: string | undefined },
>(env: E, ctx: z.RefinementCtx): E {
  const file = env.DATABASE_PASSWORD_FILE
  if (file === undefined) return env
  const fail = (message: string) => {
    ctx.addIssue({ code: 'custom', path: ['DATABASE_PASSWORD_FILE'], message })
    return z.NEVER
  }
  if (env.DATABASE_URL === undefined) return fail("needs DATABASE_URL, the password is its user's")
  const url = new URL(env.DATABASE_URL)
  if (url.password !== '') return fail('DATABASE_URL has a password already: set it in one place')
  let password: string
  try {
    password = readFileSync(file, 'utf8').replace(/[\r\n]+$/, '')
  } catch (err) {
    return fail(`cannot read ${file}: ${(err as Error).message}`)
  }
  if (password === '') return fail(`${file} is empty`)
  url.password = encodeURIComponent(password)
  return { ...env, DATABASE_URL: url.href }
}

/** Hosts that name every interface, or the loopback one: no address of their own to add. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '', 'localhost', '127.0.0.1', '::1'])

/**
 * The origins whose pages may open the live stream: PUBLIC_ORIGIN, or else the api's
 * own addresses on `port` (the port it listens on, which differs from HTTP_PORT when
 * that is 0): localhost, 127.0.0.1 and [::1], and HOST when it names one address. Never
 * a name the request brings: a page on a DNS-rebinding name (Origin and Host both
 * `evil.example:3000`) is another origin (issue 14).
 */
export function liveOrigins(config: ApiConfig, port: number): string[] {
  if (config.PUBLIC_ORIGIN !== undefined) return config.PUBLIC_ORIGIN
  const hosts = ['localhost', '127.0.0.1', '[::1]']
  const host = config.HOST
  if (!WILDCARD_HOSTS.has(host)) hosts.push(host.includes(':') ? `[${host}]` : host)
  return hosts
    .filter((h) => URL.canParse(`http://${h}`))
    .map((h) => new URL(`http://${h}:${port}`).origin)
}

/** Reads the api's configuration once. @throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined>): ApiConfig {
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
