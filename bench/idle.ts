// Memory a broker holds per connected client that does nothing: RSS before and after
// connecting N clients, divided by N, read twice: shortly after the last CONNACK, and
// once the clients have sat idle for a while (the baseline is read after as long a rest). No GC is forced: the first figure holds
// the garbage of the connection storm (a garbage-collected broker does not return it at
// once), the second what the broker settles at by itself.
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { IdleConfig, IdleResult } from './load-types.ts'
import { connectInBatches } from './mqtt-raw.ts'
import type { RawConnection } from './mqtt-raw.ts'
import { sample } from '../apps/broker/test/broker-process.ts'
import { rssBytes } from './proc.ts'

/** V8's new space as the broker's Prometheus metrics give it, bytes; none without them. */
async function youngGenBytes(metricsPort: number | undefined): Promise<number | undefined> {
  if (metricsPort === undefined) return undefined
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
  return sample(await res.text(), 'nodejs_heap_space_size_total_bytes', 'space="new"')
}

export async function runIdle(cfg: IdleConfig): Promise<IdleResult> {
  const open: RawConnection[] = []
  try {
    open.push(...(await connectInBatches(cfg.port, cfg.warmup, cfg.batch)))
    // The baseline settles too: a just-started broker still holds its start-up garbage.
    await sleep(cfg.steadyMs)
    const youngBefore = await youngGenBytes(cfg.metricsPort)
    const rssBeforeBytes = rssBytes(cfg.brokerPid)
    const t0 = performance.now()
    open.push(...(await connectInBatches(cfg.port, cfg.clients, cfg.batch)))
    const connectMs = performance.now() - t0
    await sleep(cfg.settleMs)
    const rssAfterBytes = rssBytes(cfg.brokerPid)
    const youngAfter = await youngGenBytes(cfg.metricsPort)
    await sleep(cfg.steadyMs)
    const rssSteadyBytes = rssBytes(cfg.brokerPid)
    const youngSteady = await youngGenBytes(cfg.metricsPort)
    return {
      clients: cfg.clients.length,
      rssBeforeBytes,
      rssAfterBytes,
      bytesPerClient: (rssAfterBytes - rssBeforeBytes) / cfg.clients.length,
      rssSteadyBytes,
      steadyBytesPerClient: (rssSteadyBytes - rssBeforeBytes) / cfg.clients.length,
      youngGenBytes:
        youngBefore === undefined
          ? undefined
          : { before: youngBefore, after: youngAfter!, steady: youngSteady! },
      connectMs,
    }
  } finally {
    for (const c of open) c.socket.destroy()
  }
}
