// Entry point of `npm run broker`. The broker itself (run.ts) is imported only once
// mqtt-packet's loggers have been made silent: static imports would load aedes, and
// with it mqtt-packet, before any line here ran (so would a bundle's, see
// scripts/bundle.ts).
import { installQuietDebug } from './quiet-debug.ts'

installQuietDebug()
await import('./run.ts')
