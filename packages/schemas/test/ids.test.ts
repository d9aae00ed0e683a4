import { describe, expect, it } from 'vitest'
import { IdSchema, isValidId } from '../src/index.ts'

describe('ids', () => {
  it.each(['d1', 'A', 'st-9_x', 'x'.repeat(64)])('accepts %j', (id) => {
    expect(isValidId(id)).toBe(true)
    expect(IdSchema.safeParse(id).success).toBe(true)
  })

  it.each(['', 'x'.repeat(65), 'a/b', 'a+b', 'a#b', '$SYS', 'a b', 'a.b', 'drön', 'd1\n'])(
    'rejects %j',
    (id) => {
      expect(isValidId(id)).toBe(false)
      expect(IdSchema.safeParse(id).success).toBe(false)
    },
  )
})
