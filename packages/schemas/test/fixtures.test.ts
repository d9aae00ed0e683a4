// Walks test/fixtures/<folder>/{valid,invalid}/*.json: the one table of what the contract
// accepts and refuses. Adding a case is adding a file.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import {
  decodePayload,
  PAYLOAD_SCHEMAS,
  type DecodeResult,
  type Telemetry,
  type TopicKind,
} from '../src/index.ts'

const FIXTURES = join(import.meta.dirname, 'fixtures')

const FOLDER_KINDS: Record<string, TopicKind> = {
  telemetry: 'drone/telemetry',
  'drone-status': 'drone/status',
  'drone-event': 'drone/events',
  'drone-command': 'drone/commands',
  'station-status': 'station/status',
  'delivery-request': 'station/requests',
  alert: 'fleet/alerts',
}

const InvalidFixtureSchema = z.object({
  why: z.string().min(1),
  path: z.string(),
  payload: z.unknown(),
})

type Fixture = { name: string; text: string }

function readFixtures(folder: string, verdict: 'valid' | 'invalid'): Fixture[] {
  const dir = join(FIXTURES, folder, verdict)
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .map((name) => ({ name, text: readFileSync(join(dir, name), 'utf8') }))
}

function readInvalid(fixture: Fixture): z.infer<typeof InvalidFixtureSchema> {
  return InvalidFixtureSchema.parse(JSON.parse(fixture.text))
}

const utf8 = new TextEncoder()

it('has a fixture folder for every payload schema and no other', () => {
  expect(readdirSync(FIXTURES).sort()).toEqual(Object.keys(FOLDER_KINDS).sort())
  expect(Object.values(FOLDER_KINDS).sort()).toEqual(Object.keys(PAYLOAD_SCHEMAS).sort())
})

describe.each(Object.entries(FOLDER_KINDS))('%s fixtures', (folder, kind) => {
  const schema = PAYLOAD_SCHEMAS[kind]
  const valid = readFixtures(folder, 'valid')
  const invalid = readFixtures(folder, 'invalid')

  it('has at least one valid and four invalid cases', () => {
    expect(valid.length).toBeGreaterThanOrEqual(1)
    expect(invalid.length).toBeGreaterThanOrEqual(4)
  })

  it.each(valid)('accepts valid/$name', (fixture) => {
    const result = schema.safeParse(JSON.parse(fixture.text))
    expect(result.error?.issues).toBeUndefined()
    expect(result.success).toBe(true)
  })

  it.each(valid)('decodes valid/$name from bytes', (fixture) => {
    const result = decodePayload(kind, utf8.encode(fixture.text))
    expect(result).toEqual({ ok: true, value: schema.parse(JSON.parse(fixture.text)) })
  })

  it.each(invalid)('rejects invalid/$name at its declared path', (fixture) => {
    const { path, payload } = readInvalid(fixture)
    const result = schema.safeParse(payload)
    expect(result.success).toBe(false)
    const paths = result.error?.issues.map((issue) => issue.path.join('.'))
    expect(paths).toContain(path)
  })

  it.each(invalid)('decodes invalid/$name to a reason naming its path', (fixture) => {
    const { path, payload } = readInvalid(fixture)
    // JSON.stringify writes Infinity as null: still invalid at the same path.
    const result = decodePayload(kind, utf8.encode(JSON.stringify(payload)))
    expect(result.ok).toBe(false)
    if (!result.ok) {
      expect(result.reason).toMatch(/^invalid_payload: /)
      expect(result.reason).toContain(`${path || '(root)'}: `)
    }
  })
})

describe('decodePayload', () => {
  const telemetry = readFileSync(
    join(FIXTURES, 'telemetry', 'valid', 'en-route-with-delivery.json'),
    'utf8',
  )

  it('narrows the value to the payload type of the kind', () => {
    const result = decodePayload('drone/telemetry', telemetry)
    expectTypeOf(result).toEqualTypeOf<DecodeResult<Telemetry>>()
    if (!result.ok) expect.fail(result.reason)
    expect(result.value.seq).toBe(42)
  })

  it('drops unknown fields from the decoded value', () => {
    const text = JSON.stringify({ ...(JSON.parse(telemetry) as object), rssiDbm: -70 })
    const result = decodePayload('drone/telemetry', text)
    if (!result.ok) expect.fail(result.reason)
    expect(result.value).not.toHaveProperty('rssiDbm')
  })

  it('rejects a number that overflows to Infinity', () => {
    const result = decodePayload('drone/telemetry', telemetry.replace('120.5', '1e999'))
    if (result.ok) expect.fail('decoded a non-finite altitude')
    expect(result.reason).toMatch(/^invalid_payload: altM: /)
  })

  it('rejects bytes that are not UTF-8', () => {
    const bytes = Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) // {"<ff><fe>"}
    const result = decodePayload('drone/telemetry', bytes)
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.reason).toMatch(/^invalid_utf8/)
  })

  it('rejects a truncated multi-byte sequence instead of replacing it', () => {
    const bytes = utf8.encode('{"name":"Zürich"}').slice(0, 11) // cuts "ü" in half
    const result = decodePayload('station/status', bytes)
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.reason).toMatch(/^invalid_utf8/)
  })

  it.each(['', '{', '{"v":1,}', 'NaN', "{'v':1}"])('rejects %j as invalid JSON', (text) => {
    const fromString = decodePayload('drone/events', text)
    const fromBytes = decodePayload('drone/events', utf8.encode(text))
    expect(fromString.ok).toBe(false)
    if (!fromString.ok) expect(fromString.reason).toMatch(/^invalid_json: /)
    expect(fromBytes).toEqual(fromString)
  })

  it('names the path and the problem of each issue, at most three', () => {
    const result = decodePayload('drone/telemetry', '{"v":1}')
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.reason).toMatch(
      /^invalid_payload: ts: [^;]+; seq: [^;]+; lat: [^;]+ \(\+\d+ more\)$/,
    )
  })

  it('says (root) when the payload is not an object', () => {
    const result = decodePayload('station/requests', '42')
    expect(result).toEqual({
      ok: false,
      reason: 'invalid_payload: (root): Invalid input: expected object, received number',
    })
  })
})
