// One app (broker, api, simulator) run by `npm start` as a child process: its output
// line by line, a wait for a line with a bound, and a stop with a bound.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

export interface AppProcess {
  readonly name: string
  /** Resolves when the process has exited: its exit code, or null when a signal ended it. */
  readonly exited: Promise<number | null>
  readonly hasExited: boolean
  /**
   * Resolves with `match`'s first defined result over the stdout lines to come; rejects
   * when the process exits first or after `timeoutMs`.
   */
  waitForLine<T>(match: (line: string) => T | undefined, timeoutMs: number): Promise<T>
  /** SIGTERM, then SIGKILL after `timeoutMs`; resolves with the exit code (null: killed). */
  stop(timeoutMs: number): Promise<number | null>
  /** SIGKILL now. */
  kill(): void
}

/**
 * Runs `node nodeFlags script args` with `env`. Every output line goes to `onLine`.
 * The child gets its own process group (detached): a Ctrl-C on the terminal reaches
 * the launcher only, which then stops the apps one by one in its own order.
 */
export function startApp(
  name: string,
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  onLine: (line: string, stream: 'stdout' | 'stderr') => void,
  nodeFlags: readonly string[] = [],
): AppProcess {
  const child = spawn(process.execPath, [...nodeFlags, '--enable-source-maps', script, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  let hasExited = false
  let exit!: (code: number | null) => void
  const exited = new Promise<number | null>((resolve) => (exit = resolve))
  child.once('exit', (code) => {
    hasExited = true
    exit(code)
  })
  // A process that could not be spawned emits 'error' and no 'exit'.
  child.once('error', (err) => {
    onLine(`could not start: ${err.message}`, 'stderr')
    hasExited = true
    exit(1)
  })
  const stdout = createInterface({ input: child.stdout })
  stdout.on('line', (line) => onLine(line, 'stdout'))
  createInterface({ input: child.stderr }).on('line', (line) => onLine(line, 'stderr'))

  return {
    name,
    exited,
    get hasExited() {
      return hasExited
    },
    waitForLine<T>(match: (line: string) => T | undefined, timeoutMs: number) {
      return new Promise<T>((resolve, reject) => {
        const onOutput = (line: string) => {
          const result = match(line)
          if (result === undefined) return
          done()
          resolve(result)
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`${name} did not start within ${timeoutMs / 1000} s`))
        }, timeoutMs)
        const done = () => {
          clearTimeout(timer)
          stdout.off('line', onOutput)
        }
        stdout.on('line', onOutput)
        void exited.then((code) => {
          done()
          reject(new Error(`${name} exited with code ${code} while starting`))
        })
      })
    },
    async stop(timeoutMs) {
      if (hasExited) return exited
      child.kill('SIGTERM')
      const timer = setTimeout(() => {
        onLine(`did not stop within ${timeoutMs / 1000} s: killed`, 'stderr')
        child.kill('SIGKILL')
      }, timeoutMs)
      const code = await exited
      clearTimeout(timer)
      return code
    },
    kill() {
      if (!hasExited) child.kill('SIGKILL')
    },
  }
}
