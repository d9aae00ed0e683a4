import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

/** Debian's haproxy (package haproxy). */
export const HAPROXY = '/usr/sbin/haproxy'
const DEPLOY_CONFIG = new URL('../../../deploy/haproxy.cfg', import.meta.url)

/** Where haproxy finds one broker, by its server name in deploy/haproxy.cfg. */
export interface BrokerPorts {
  mqtt: number
  ws: number
  health: number
}

export interface ServerState {
  status: string
  check: string
  code: string
}

export interface Haproxy {
  mqttPort: number
  wsPort: number
  /** Output so far (its log, warnings). */
  output: string[]
  /**
   * Each server of a backend, by server name: its state (`UP`, `DOWN`, `UP 1/2` …) and
   * its last health check's result (`L7OK`, `L7STS` for an HTTP status it refused,
   * `L4CON` for a refused connection …) and HTTP status.
   */
  servers(backend: string): Promise<Record<string, ServerState>>
  /** Stops haproxy; resolves once it has exited. */
  stop(): Promise<void>
}

/**
 * deploy/haproxy.cfg as it is, but on loopback: its binds on free ports, its servers on
 * the brokers' ports, no Docker DNS, checks every 100 ms instead of 2 s, and a stats
 * page to read the checks' verdicts from. Throws when the file no longer has a line
 * this rewrites, so the test keeps following the deployed file.
 */
export function testConfig(
  brokers: Record<string, BrokerPorts>,
  ports: { mqtt: number; ws: number; stats: number },
): string {
  let config = readFileSync(DEPLOY_CONFIG, 'utf8')
  const rewrite = (pattern: RegExp, by: (...m: string[]) => string) => {
    const before = config
    config = config.replace(pattern, by)
    if (config === before) throw new Error(`deploy/haproxy.cfg: no match for ${pattern}`)
  }
  rewrite(/^resolvers docker\n(?:[ \t]+.*\n)*/m, () => '')
  rewrite(/ resolvers docker init-addr \S+/g, () => '')
  rewrite(/^(\s*bind) :1883$/m, (_, bind) => `${bind} 127.0.0.1:${ports.mqtt}`)
  rewrite(/^(\s*bind) :8083$/m, (_, bind) => `${bind} 127.0.0.1:${ports.ws}`)
  rewrite(/^(\s*server (\S+)) \2:(1883|8083) check port 9101$/gm, (_, head, name, port) => {
    const broker = brokers[name]
    if (broker === undefined) throw new Error(`deploy/haproxy.cfg: no test broker for ${name}`)
    const to = port === '1883' ? broker.mqtt : broker.ws
    return `${head} 127.0.0.1:${to} check port ${broker.health}`
  })
  rewrite(/\binter 2s\b/g, () => 'inter 100ms')
  return `${config}
frontend stats
  mode http
  bind 127.0.0.1:${ports.stats}
  stats enable
  stats uri /stats
`
}

/** Starts haproxy in the foreground with testConfig(brokers); resolves once it serves. */
export async function startHaproxy(brokers: Record<string, BrokerPorts>): Promise<Haproxy> {
  const ports = { mqtt: await freePort(), ws: await freePort(), stats: await freePort() }
  const dir = mkdtempSync(join(tmpdir(), 'skyline-haproxy-'))
  const file = join(dir, 'haproxy.cfg')
  writeFileSync(file, testConfig(brokers, ports))
  const child = spawn(HAPROXY, ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  const output: string[] = []
  createInterface({ input: child.stdout }).on('line', (l) => output.push(l))
  createInterface({ input: child.stderr }).on('line', (l) => output.push(l))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))

  const servers = async (backend: string) => {
    const res = await fetch(`http://127.0.0.1:${ports.stats}/stats;csv`)
    const [header, ...rows] = (await res.text()).trim().split('\n')
    const columns = header!.replace(/^# /, '').split(',')
    const column = (row: string[], name: string) => row[columns.indexOf(name)] ?? ''
    const result: Record<string, ServerState> = {}
    for (const row of rows.map((r) => r.split(','))) {
      if (column(row, 'pxname') !== backend || column(row, 'svname') === 'BACKEND') continue
      result[column(row, 'svname')] = {
        status: column(row, 'status'),
        check: column(row, 'check_status'),
        code: column(row, 'check_code'),
      }
    }
    return result
  }
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const kill = setTimeout(() => child.kill('SIGKILL'), 2_000)
      await exited
      clearTimeout(kill)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  // Not vi.waitFor: `npm run chaos -- cluster` starts haproxy this way too, outside vitest.
  const deadline = performance.now() + 5_000
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`haproxy exited: ${output.join('\n')}`)
      const serving = await servers('brokers_mqtt').then(
        () => true,
        (err: unknown) => {
          if (performance.now() > deadline) throw err
          return false
        },
      )
      if (serving) break
      await new Promise((r) => setTimeout(r, 50))
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { mqttPort: ports.mqtt, wsPort: ports.ws, output, servers, stop }
}

/** A port free now (the kernel's pick, released at once). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      server.close(() => resolve(port))
    })
  })
}
