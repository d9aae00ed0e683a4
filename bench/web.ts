// The live map under load: N simulated drones at 1 Hz through the real stack (broker,
// api on Postgres, live stream) into the built page in Debian's headless Chromium.
// Frames per second the page paints, and what its own work costs per live frame.
import { setTimeout as sleep } from 'node:timers/promises'
import { build } from 'vite'
import { fileURLToPath } from 'node:url'
import { launchChromium } from '../apps/web/test/browser.ts'
import { benchToken, startStack } from './stack.ts'

export interface WebSettings {
  drones: number
  stations: number
  /** Seconds measured once every drone is listed. */
  measureS: number
}

export const webSettingsFor = (quick: boolean): WebSettings =>
  quick
    ? { drones: 1_000, stations: 10, measureS: 5 }
    : { drones: 10_000, stations: 50, measureS: 30 }

export interface WebResult extends WebSettings {
  /** Animation frames per second the page ran (60 is the display's pace). */
  fps: number
  /** Live frames received per second. */
  liveFramesPerS: number
  /** ms per live frame: merging it into the store; updating the list; drawing the canvas. */
  applyMs: { p50: number; p99: number }
  renderMs: { p50: number; p99: number }
  drawMs: { p50: number; p99: number }
  /** Main-thread tasks over 50 ms in the window, and their total. */
  longTasks: number
  longTaskMs: number
  heapMiB: number
  /** ms per second of the main thread, from Chromium's Performance.getMetrics. */
  mainThreadMsPerS: { script: number; style: number; layout: number; all: number }
}

export async function benchWeb(
  s: WebSettings,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<WebResult> {
  await build({
    root: fileURLToPath(new URL('../apps/web', import.meta.url)),
    logLevel: 'warn',
  })
  const stack = await startStack({
    database: 'postgres',
    fleet: { drones: s.drones, stations: s.stations, rateHz: 1, radiusKm: 20 },
    signal,
    log,
  })
  const browser = await launchChromium()
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 860 } })
    await page.goto(`${stack.apiUrl}/#token=${await benchToken()}`)
    // The header counts the drones the page knows (the list shows only those in view).
    await page.waitForFunction(
      (n) => document.getElementById('counts')?.textContent?.startsWith(`${n} drones`),
      s.drones,
      { timeout: 180_000, polling: 1_000 },
    )
    log(`web bench: the page lists ${s.drones} drones; measuring ${s.measureS} s`)
    await sleep(2_000, undefined, { signal })
    // tsx compiles with esbuild's keepNames, which wraps named functions in a __name()
    // helper that the page lacks: give it one.
    await page.evaluate('globalThis.__name = (f) => f')
    // Chromium's own accounting of the main thread: script, style, layout, in all.
    const cdp = await page.context().newCDPSession(page)
    await cdp.send('Performance.enable')
    const metrics = async () =>
      Object.fromEntries(
        (await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]),
      )
    const before = await metrics()
    const r = await page.evaluate(async (ms) => {
      const durations: Record<string, number[]> = {
        'skyline:apply': [],
        'skyline:render': [],
        'skyline:draw': [],
      }
      let longTasks = 0
      let longTaskMs = 0
      const observer = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          if (e.entryType === 'longtask') {
            longTasks++
            longTaskMs += e.duration
          } else durations[e.name]?.push(e.duration)
        }
      })
      observer.observe({ entryTypes: ['measure', 'longtask'] })
      let frames = 0
      const start = performance.now()
      await new Promise<void>((resolve) => {
        const tick = () => {
          frames++
          if (performance.now() - start < ms) requestAnimationFrame(tick)
          else resolve()
        }
        requestAnimationFrame(tick)
      })
      const seconds = (performance.now() - start) / 1000
      observer.disconnect()
      const q = (xs: number[], p: number) => {
        const sorted = [...xs].sort((a, b) => a - b)
        return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0
      }
      const stat = (xs: number[]) => ({ p50: q(xs, 0.5), p99: q(xs, 0.99) })
      const memory = (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory
      return {
        fps: frames / seconds,
        liveFramesPerS: durations['skyline:apply']!.length / seconds,
        applyMs: stat(durations['skyline:apply']!),
        renderMs: stat(durations['skyline:render']!),
        drawMs: stat(durations['skyline:draw']!),
        longTasks,
        longTaskMs,
        heapMiB: (memory?.usedJSHeapSize ?? 0) / 2 ** 20,
      }
    }, s.measureS * 1000)
    const after = await metrics()
    const perS = (name: string) => (((after[name] ?? 0) - (before[name] ?? 0)) / s.measureS) * 1000
    return {
      ...s,
      ...r,
      mainThreadMsPerS: {
        script: perS('ScriptDuration'),
        style: perS('RecalcStyleDuration'),
        layout: perS('LayoutDuration'),
        all: perS('TaskDuration'),
      },
    }
  } finally {
    await browser.close()
    await stack.stop()
  }
}

export function webTable(r: WebResult): string {
  const f = (x: number, d = 0) =>
    x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
  const ms = (x: { p50: number; p99: number }) => `${f(x.p50, 1)} / ${f(x.p99, 1)} ms`
  return [
    `Live map: ${f(r.drones)} drones at 1 Hz through broker, api (Postgres) and /api/live into headless Chromium (${r.measureS} s window)`,
    '| measure | value |',
    '| --- | --- |',
    `| page frames per second | ${f(r.fps, 1)} |`,
    `| live frames received per second | ${f(r.liveFramesPerS, 1)} |`,
    `| merge a live frame into the store, p50 / p99 | ${ms(r.applyMs)} |`,
    `| update the fleet list, p50 / p99 | ${ms(r.renderMs)} |`,
    `| draw every drone on the canvas, p50 / p99 | ${ms(r.drawMs)} |`,
    `| main-thread tasks over 50 ms | ${r.longTasks} (${f(r.longTaskMs)} ms in all) |`,
    `| JS heap | ${f(r.heapMiB)} MiB |`,
    `| main thread busy, ms per s: all / script / style / layout | ${f(r.mainThreadMsPerS.all)} / ${f(r.mainThreadMsPerS.script)} / ${f(r.mainThreadMsPerS.style)} / ${f(r.mainThreadMsPerS.layout)} |`,
  ].join('\n')
}
