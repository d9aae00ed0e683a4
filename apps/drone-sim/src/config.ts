import { parseArgs } from 'node:util'
import { z } from 'zod'
import { OIDC_CLIENT_ENV, OIDC_ENV, withOidcClientRules, withOidcRules } from '@skyline/auth'
import { IdSchema } from '@skyline/schemas'
import type { FleetOptions } from './fleet.ts'

/** A bad flag or variable. The message names it, so start-up prints it as is. */
export class UsageError extends Error {
  readonly code = 'invalid_usage'
}

const num = z.coerce.number()

const FlagsSchema = z.object({
  drones: num.int().min(0).max(100_000).default(12),
  stations: num.int().min(2).max(1_000).default(4),
  fleet: IdSchema.default('demo'),
  center: z
    .string()
    .default('48.8566,2.3522')
    .transform((s, ctx) => {
      // Number('') is 0: an empty part must not read as the equator or Greenwich.
      const parts = s.split(',').map((p) => (p.trim() === '' ? NaN : Number(p)))
      const [lat, lon] = parts
      if (
        parts.length !== 2 ||
        lat === undefined ||
        lon === undefined ||
        !(Math.abs(lat) <= 90) ||
        !(Math.abs(lon) <= 180)
      ) {
        ctx.addIssue({ code: 'custom', message: 'must be lat,lon in degrees, e.g. 48.8566,2.3522' })
        return z.NEVER
      }
      return { lat, lon }
    }),
  'radius-km': num.positive().max(500).default(5),
  rate: num.positive().max(20).default(1),
  'telemetry-qos': z
    .enum(['0', '1'])
    .default('0')
    .transform(Number)
    .pipe(z.union([z.literal(0), z.literal(1)])),
  chaos: num.min(0).max(1).default(0),
  'time-scale': num.positive().max(10_000).default(1),
  // Unset: sized to what the fleet can fly (capacity.ts).
  demand: num.min(0).max(600).optional(),
  patrol: z.boolean().default(false),
  keepalive: num.int().min(1).max(3600).default(10),
  seed: num.int().default(1),
})

const EnvSchema = withOidcClientRules(
  withOidcRules(
    z.object({
      MQTT_URL: z.url({ protocol: /^(mqtts?|wss?)$/ }).default('mqtt://localhost:1883'),
      DEVICE_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
      DATA_DIR: z.string().min(1).default('./data'),
      OIDC_ISSUER: OIDC_ENV.OIDC_ISSUER,
      OIDC_AUDIENCE: OIDC_ENV.OIDC_AUDIENCE,
      ...OIDC_CLIENT_ENV,
      // One client per device: the template names each device's client.
      OIDC_CLIENT_ID: OIDC_CLIENT_ENV.OIDC_CLIENT_ID.refine(
        (id) => id === undefined || id.includes('{device}'),
        'must contain {device} (e.g. {fleet}.{device}): each drone and station is its own client',
      ),
    }),
  ),
)

/** Where the devices' tokens come from. */
export type TokenSource =
  | { kind: 'secret'; secret: string | undefined; dataDir: string }
  | {
      kind: 'issuer'
      issuer: string
      audience: string
      scope: string | undefined
      clientIdTemplate: string
      clientSecret: string
    }

export type SimConfig = Omit<FleetOptions, 'tokens'> & { tokens: TokenSource }

export const USAGE = `usage: npm run sim -- [flags]
  --drones N          drones (default 12)
  --stations M        landing stations (default 4)
  --fleet F           fleet id (default demo)
  --center LAT,LON    centre of the area (default 48.8566,2.3522)
  --radius-km R       stations within R km of the centre (default 5)
  --rate HZ           telemetry per drone per second (default 1, at most 20)
  --telemetry-qos Q   0 or 1 (default 0)
  --chaos P           drops per drone per simulated minute, on average (default 0)
  --time-scale X      simulated time runs X times faster (default 1)
  --demand D          delivery requests per station per simulated minute
                      (default: 70% of what the fleet can fly, printed at start)
  --patrol            idle drones fly between stations on their own (no dispatcher needed)
  --keepalive S       MQTT keepalive, seconds (default 10)
  --seed N            random seed: same seed, same fleet (default 1)
environment: MQTT_URL (default mqtt://localhost:1883), DEVICE_TOKEN_SECRET or the secret in DATA_DIR (default ./data);
  or tokens from an OpenID Connect issuer: OIDC_ISSUER, OIDC_AUDIENCE, OIDC_CLIENT_ID (a template
  such as {fleet}.{device}: one client per device), OIDC_CLIENT_SECRET, OIDC_SCOPE`

/** Reads flags and environment once. @throws UsageError naming the bad flag or variable. */
export function loadConfig(argv: string[], env: Record<string, string | undefined>): SimConfig {
  let values: Record<string, unknown>
  try {
    const options = Object.fromEntries(
      Object.keys(FlagsSchema.shape).map((k) => [
        k,
        { type: k === 'patrol' ? 'boolean' : 'string' } as const,
      ]),
    )
    ;({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }))
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err))
  }
  const flags = FlagsSchema.safeParse(values)
  if (!flags.success) {
    throw new UsageError(
      flags.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('\n'),
    )
  }
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''))
  const vars = EnvSchema.safeParse(present)
  if (!vars.success) {
    throw new UsageError(
      vars.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n'),
    )
  }
  const f = flags.data
  return {
    url: vars.data.MQTT_URL,
    fleetId: f.fleet,
    drones: f.drones,
    stations: f.stations,
    center: f.center,
    radiusKm: f['radius-km'],
    rateHz: f.rate,
    telemetryQos: f['telemetry-qos'],
    chaosPerMin: f.chaos,
    timeScale: f['time-scale'],
    demandPerMin: f.demand,
    patrol: f.patrol,
    keepaliveS: f.keepalive,
    seed: f.seed,
    tokens: tokenSource(vars.data),
  }
}

function tokenSource(env: z.infer<typeof EnvSchema>): TokenSource {
  const { OIDC_ISSUER, OIDC_AUDIENCE, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET } = env
  if (OIDC_CLIENT_ID === undefined) {
    return { kind: 'secret', secret: env.DEVICE_TOKEN_SECRET, dataDir: env.DATA_DIR }
  }
  // withOidcClientRules and withOidcRules hold these to be set together.
  return {
    kind: 'issuer',
    issuer: OIDC_ISSUER!,
    audience: OIDC_AUDIENCE!,
    scope: env.OIDC_SCOPE,
    clientIdTemplate: OIDC_CLIENT_ID,
    clientSecret: OIDC_CLIENT_SECRET!,
  }
}
