// The Mosquitto brokers the bench compares against: the system daemon, and a private
// instance of the same binary for the memory measure.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect as tcpConnect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { isAlive } from './proc.ts'

const DAEMON = { port: 1883, pidFile: '/run/mosquitto/mosquitto.pid' }

export interface MosquittoProcess {
  port: number
  pid: number
  stop(): Promise<void>
}

/** The system daemon on 127.0.0.1:1883; not ours to stop. */
export function mosquittoDaemon(): MosquittoProcess {
  const pid = Number(readFileSync(DAEMON.pidFile, 'utf8').trim())
  if (!isAlive(pid)) throw new Error(`Mosquitto (pid ${pid} from ${DAEMON.pidFile}) is not running`)
  return { port: DAEMON.port, pid, stop: async () => {} }
}

/**
 * A fresh Mosquitto on a free loopback port, defaults otherwise. Memory is measured on
 * one: a long-running daemon's RSS does not grow while malloc reuses the heap that
 * earlier load left free, which made 1,000 connections look free of charge.
 */
export async function startMosquitto(timeoutMs = 5_000): Promise<MosquittoProcess> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'bench-mosquitto-'))
  const conf = join(dir, 'mosquitto.conf')
  writeFileSync(
    conf,
    [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest none']
      .map((line) => line + '\n')
      .join(''),
  )
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await Promise.race([exited, sleep(5_000)])
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const deadline = Date.now() + timeoutMs
    while (!(await accepts(port))) {
      if (child.exitCode !== null) throw new Error(`mosquitto exited: ${stderr.trim()}`)
      if (Date.now() > deadline) throw new Error(`mosquitto did not listen within ${timeoutMs} ms`)
      await sleep(50)
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { port, pid: child.pid!, stop }
}

/** A port free now; Mosquitto binds it a moment later (a race we accept on loopback). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}
