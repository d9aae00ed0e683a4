// Entry point of `npm run bench:web [-- --quick]`: the live map's row of `npm run bench`
// alone (bench/web.ts), for work on the page that needs no broker or wire figures.
import { parseArgs } from 'node:util'
import { benchWeb, webSettingsFor, webTable } from './web.ts'

const controller = new AbortController()
process.once('SIGINT', () => controller.abort(new Error('interrupted by SIGINT')))
process.once('SIGTERM', () => controller.abort(new Error('interrupted by SIGTERM')))

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } })
const settings = webSettingsFor(values.quick ?? false)
console.error(`web bench${values.quick ? ' (quick)' : ''}: ${JSON.stringify(settings)}`)
const result = await benchWeb(settings, controller.signal, (line) => console.error(line))
console.log(webTable(result))
