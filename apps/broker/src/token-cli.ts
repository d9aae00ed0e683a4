// `npm run token -- --role drone --fleet F --id ID [--expires-in S]`: prints a device
// token signed with DEVICE_TOKEN_SECRET (or the secret kept in DATA_DIR), to use as the
// MQTT password with the id as the username.
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { IdSchema } from '@skyline/schemas'
import { ConfigError, loadConfig } from './config.ts'
import { resolveTokenSecret } from '@skyline/auth'
import { DEVICE_ROLES, signDeviceToken } from '@skyline/auth'

const ArgsSchema = z.object({
  role: z.enum(DEVICE_ROLES, { error: `--role must be one of ${DEVICE_ROLES.join(', ')}` }),
  id: IdSchema.describe('--id'),
  fleet: IdSchema.optional(),
  'expires-in': z.coerce.number().int().positive().optional(),
})

const USAGE =
  'usage: npm run token -- --role drone|station|service|viewer --fleet FLEET --id ID [--expires-in SECONDS]'

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' },
      id: { type: 'string' },
      fleet: { type: 'string' },
      'expires-in': { type: 'string' },
    },
    strict: true,
  })
  const args = ArgsSchema.safeParse(values)
  if (!args.success) {
    const flags = args.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`)
    throw new UsageError(flags.join('\n'))
  }
  const { role, id, fleet } = args.data
  if (role !== 'service' && fleet === undefined)
    throw new UsageError(`--fleet: required for role ${role}`)
  const config = loadConfig(process.env)
  const secret = resolveTokenSecret(config.DEVICE_TOKEN_SECRET, config.DATA_DIR)
  const claims = role === 'service' ? { role, sub: id, fleet } : { role, sub: id, fleet: fleet! }
  console.log(await signDeviceToken(secret, claims, args.data['expires-in']))
}

class UsageError extends Error {}

main().catch((err: unknown) => {
  if (err instanceof UsageError) console.error(`${err.message}\n${USAGE}`)
  else if (err instanceof ConfigError) console.error(`token: ${err.message}`)
  else console.error('token: failed:', err instanceof Error ? err.message : err)
  process.exit(2)
})
