// Starts the publishing fleet (bench/fleet-load.ts) as a child process and talks to it.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { signDeviceToken } from '@skyline/auth'
import type { FleetConfig } from './fleet-load.ts'
import type { FleetStep, FleetStepResult } from './fleet-publish.ts'
import { STACK_SECRET } from './stack.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const LOAD = fileURLToPath(new URL('./fleet-load.ts', import.meta.url))

export interface FleetProcess {
  pid: number
  connectS: number
  run(step: FleetStep): Promise<FleetStepResult>
  stop(): Promise<void>
}

/** Connects `drones` drones (ids d0, d1, ...) of `fleet` to the broker on `port`. */
export async function spawnFleet(
  port: number,
  fleet: string,
  drones: number,
  signal: AbortSignal,
): Promise<FleetProcess> {
  const creds = await Promise.all(
    Array.from({ length: drones }, async (_, i) => ({
      username: `d${i}`,
      clientId: `d${i}`,
      password: await signDeviceToken(STACK_SECRET, { role: 'drone', sub: `d${i}`, fleet }),
    })),
  )
  const child = spawn(process.execPath, ['--import', 'tsx', LOAD], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    signal,
  })
  child.on('error', () => {}) // AbortError: the pending request below rejects on exit
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`fleet process exited with ${code}: ${stderr.trim()}`)
  })
  exited.catch(() => {})
  const ask = async <T>(request: object): Promise<T> => {
    child.stdin.write(JSON.stringify(request) + '\n')
    const line = await Promise.race([lines.next(), exited])
    return JSON.parse(line.value as string) as T
  }
  const config: FleetConfig = { port, fleet, drones: creds }
  const { connectS } = await ask<{ connectS: number }>(config)
  return {
    pid: child.pid!,
    connectS,
    run: (step) => ask<FleetStepResult>(step),
    async stop() {
      if (child.exitCode !== null) return
      const gone = once(child, 'exit')
      child.stdin.end()
      await gone
    },
  }
}
