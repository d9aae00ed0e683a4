// Entry point of `npm run sim`: reads flags and environment, starts the fleet, shows a
// status line on a terminal, and stops cleanly (no wills fire) on SIGINT/SIGTERM.
import { TokenRequestError, resolveTokenSecret } from '@skyline/auth'
import { USAGE, UsageError, loadConfig } from './config.ts'
import type { TokenSource } from './config.ts'
import { RefusedError } from './connection.ts'
import { issuerTokens, signedTokens } from './credentials.ts'
import type { DeviceTokens } from './credentials.ts'
import { Fleet } from './fleet.ts'
import { demandText, startStatusLine, summaryText } from './status-line.ts'

async function main(): Promise<void> {
  const config = loadConfig(process.argv.slice(2), process.env)
  const started = performance.now()
  const fleet = Fleet.create({ ...config, tokens: await deviceTokens(config.tokens) })
  let stopStatus = () => {}

  // Installed before connecting: Ctrl-C while 10,000 drones connect still lands them
  // cleanly. A second Ctrl-C does not wait.
  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`${signal} again: exiting without landing`)
      process.exit(130)
    }
    stopping = true
    stopStatus()
    console.log(`${signal}: landing the fleet`)
    fleet.stop().then(
      () => {
        console.log(summaryText(fleet, (performance.now() - started) / 1000))
        process.exit(0)
      },
      (err: unknown) => {
        console.error('sim: stop failed:', err)
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)

  console.log(
    `connecting ${config.drones} drones and ${config.stations} stations of fleet ${config.fleetId} to ${config.url}`,
  )
  await fleet.run()
  if (stopping) return
  console.log(demandText(fleet, config.demandPerMin === undefined))
  console.log(`fleet ${config.fleetId} flying (time scale ${config.timeScale}); Ctrl-C stops it`)
  if (process.stdout.isTTY) stopStatus = startStatusLine(fleet, process.stdout)
}

function deviceTokens(source: TokenSource): Promise<DeviceTokens> | DeviceTokens {
  if (source.kind === 'secret')
    return signedTokens(resolveTokenSecret(source.secret, source.dataDir))
  return issuerTokens(source)
}

main().catch((err: unknown) => {
  if (err instanceof UsageError) console.error(`sim: ${err.message}\n${USAGE}`)
  else if (err instanceof RefusedError || err instanceof TokenRequestError) {
    console.error(`sim: ${err.message}`)
  } else console.error('sim: failed to start:', err instanceof Error ? err.message : err)
  process.exit(2)
})
