// Starts the load generator (bench/load.ts) as a child process and waits for its answer.
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { IdleConfig, IdleResult, ThroughputConfig, ThroughputResult } from './load-types.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const LOAD = fileURLToPath(new URL('./load.ts', import.meta.url))

export function runLoad(
  cfg: ThroughputConfig,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<ThroughputResult>
export function runLoad(
  cfg: IdleConfig,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<IdleResult>
/**
 * Runs one load in a fresh process. It is killed when `signal` aborts or after
 * `timeoutMs`, and exits by itself when our end of its stdin closes.
 */
export function runLoad(
  cfg: ThroughputConfig | IdleConfig,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<ThroughputResult | IdleResult> {
  // `node --import tsx` rather than the tsx CLI: the CLI would put a launcher process
  // between us and the load generator.
  const child = spawn(process.execPath, ['--import', 'tsx', LOAD], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    signal,
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  child.stdin.on('error', () => {}) // EPIPE if it died first: reported by 'close' below
  child.stdin.write(JSON.stringify(cfg) + '\n')
  return new Promise((resolve, reject) => {
    child.once('error', reject) // AbortError when `signal` aborted
    child.once('close', (code, killedBy) => {
      if (code === 0) return resolve(JSON.parse(stdout) as ThroughputResult | IdleResult)
      const why = killedBy ? `killed by ${killedBy} (timeout ${timeoutMs} ms?)` : `exit ${code}`
      reject(new Error(`load generator (${cfg.mode}): ${why}: ${stderr.trim()}`))
    })
  })
}
