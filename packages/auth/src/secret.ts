import { randomBytes } from 'node:crypto'
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const SECRET_FILE = 'device-token-secret'

/**
 * The secret that signs device tokens: DEVICE_TOKEN_SECRET when set, otherwise one
 * generated on first use and kept in DATA_DIR, so that the broker, `npm run token`
 * and the simulator started from the same folder agree without any setup.
 */
export function resolveTokenSecret(configured: string | undefined, dataDir: string): string {
  if (configured !== undefined) return configured
  const file = join(dataDir, SECRET_FILE)
  try {
    return checked(readFileSync(file, 'utf8').trim(), file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  mkdirSync(dataDir, { recursive: true })
  const secret = randomBytes(32).toString('base64url')
  // Written whole to a temporary file, then linked into place: another process
  // starting at the same moment sees either no file or the complete secret, and
  // link() fails rather than overwrite a secret that won the race.
  const temp = `${file}.${process.pid}.tmp`
  writeFileSync(temp, secret + '\n', { mode: 0o600 })
  try {
    linkSync(temp, file)
    return secret
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return checked(readFileSync(file, 'utf8').trim(), file)
  } finally {
    rmSync(temp, { force: true })
  }
}

function checked(secret: string, file: string): string {
  if (secret.length < 32) {
    throw new Error(
      `${file} holds a secret shorter than 32 characters: delete it or set DEVICE_TOKEN_SECRET`,
    )
  }
  return secret
}
