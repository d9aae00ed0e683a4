import { z } from 'zod'

// Ids become MQTT topic levels, so the pattern leaves out `/`, the wildcards `+` and `#`,
// and `$` (a leading `$` marks broker-internal topics), see MQTT 3.1.1 §4.7. The length cap
// keeps topics and database keys small.
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

export const IdSchema = z.string().regex(ID_PATTERN)

export function isValidId(s: string): boolean {
  return ID_PATTERN.test(s)
}
