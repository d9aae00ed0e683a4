import { chromium } from 'playwright-core'
import type { Browser, BrowserContextOptions, Page } from 'playwright-core'

/** Debian's Chromium (`apt-get install chromium`); a browser is never downloaded. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
}

/**
 * Opens `url` and records the page's console errors, uncaught exceptions and content
 * security policy violations (each as `CSP: <directive> blocked <what>`, whether or not
 * the browser also logs it), except failed loads from `ignoreHost` (a tile server that is
 * unreachable on purpose). `options` are the page's (e.g. `timezoneId`, for clock times
 * a test can spell out).
 */
export async function openPage(
  browser: Browser,
  url: string,
  ignoreHost?: string,
  options: BrowserContextOptions = {},
): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 860 }, ...options })
  const errors: string[] = []
  page.on('console', (m) => {
    if (m.type() !== 'error') return
    if (ignoreHost !== undefined && m.location().url.includes(ignoreHost)) return
    errors.push(`${m.text()} (${m.location().url})`)
  })
  page.on('pageerror', (err) => errors.push(err.message))
  await page.exposeFunction('reportCspViolation', (v: string) => errors.push(`CSP: ${v}`))
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      const report = (window as unknown as { reportCspViolation: (v: string) => void })
        .reportCspViolation
      report(
        `${e.effectiveDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile}:${e.lineNumber})`,
      )
    })
  })
  await page.goto(url)
  return { page, errors }
}
