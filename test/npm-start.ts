// `npm start` run as a user runs it, for the tests: in its own process group (as a
// terminal's foreground job, so that a Ctrl-C can be sent to the whole group), its
// output kept and waited on with a bound.
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'

export interface NpmStart {
  readonly pid: number
  /** Everything printed so far, stdout and stderr interleaved. */
  output(): string
  /** Resolves with the first match of `pattern` in the output; rejects on exit or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>
  /** The exit code, once exited (null: ended by a signal); rejects after `timeoutMs`. */
  exit(timeoutMs: number): Promise<number | null>
  /** Ctrl-C on a terminal: SIGINT to every process of the group. */
  ctrlC(): void
}

/** Environment variables of the machine that would change what `npm start` does. */
const NEUTRAL = {
  DATABASE_URL: '', // CI points it at a shared Postgres: npm start must use PGlite here
  DEVICE_TOKEN_SECRET: '',
  REDIS_URL: '',
  MQTT_URL: '',
  TLS_CERT: '',
  TLS_KEY: '',
  LOG_LEVEL: '',
  HOST: '127.0.0.1',
}

export function npmStart(cwd: string, env: Record<string, string>): NpmStart {
  const child = spawn('npm', ['start'], {
    cwd,
    env: { ...process.env, ...NEUTRAL, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let text = ''
  const listeners = new Set<() => void>()
  const append = (chunk: Buffer) => {
    text += chunk.toString()
    listeners.forEach((l) => l())
  }
  child.stdout.on('data', append)
  child.stderr.on('data', append)
  let code: number | null | undefined
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (c) => {
      code = c
      listeners.forEach((l) => l())
      resolve(c)
    }),
  )

  return {
    pid: child.pid!,
    output: () => text,
    waitFor(pattern, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(text)
          if (match !== null) finish(() => resolve(match))
          else if (code !== undefined) finish(() => reject(new Error(`exited (${code}):\n${text}`)))
        }
        const timer = setTimeout(
          () => finish(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${text}`))),
          timeoutMs,
        )
        const finish = (settle: () => void) => {
          clearTimeout(timer)
          listeners.delete(check)
          settle()
        }
        listeners.add(check)
        check()
      })
    },
    exit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`did not exit within ${timeoutMs} ms:\n${text}`)),
          timeoutMs,
        )
      })
      return Promise.race([exited, late]).finally(() => clearTimeout(timer))
    },
    ctrlC: () => process.kill(-child.pid!, 'SIGINT'),
  }
}

/** Processes whose DATA_DIR is `dataDir` or under it: npm start's and every app it started. */
export function processesUsing(dataDir: string): { pid: number; command: string }[] {
  const found = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0')
      if (!env.some((v) => v === `DATA_DIR=${dataDir}` || v.startsWith(`DATA_DIR=${dataDir}/`))) {
        continue
      }
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ')
      found.push({ pid: Number(entry), command: command.trim() })
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found
}

/** `n` ports free right now on 127.0.0.1 (held together while picked, so all differ). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = []
  for (let i = 0; i < n; i++) {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    servers.push(server)
  }
  const ports = servers.map((s) => (s.address() as AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}
