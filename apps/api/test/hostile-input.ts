// Hostile input for the REST fuzz test (rest-fuzz.test.ts): a fixed table of values that
// have broken, or could break, a parameter's decoding or the database beneath it (issue
// #14), and fast-check arbitraries that mix them with random ones. Requests are built
// from the OpenAPI document the app serves, so a new route or parameter is fuzzed as soon
// as it is declared.
import fc from 'fast-check'

/** The parts of an OpenAPI 3 schema object the fuzzer reads. */
export interface JsonSchema {
  type?: string
  enum?: unknown[]
  format?: string
  minimum?: number
  maximum?: number
  properties?: Record<string, JsonSchema>
}

export interface Parameter {
  in: 'path' | 'query' | 'header'
  name: string
  required?: boolean
  schema?: JsonSchema
}

/** One method of one path of the document. */
export interface Operation {
  method: string
  path: string
  parameters: Parameter[]
  /** The JSON body's schema, when the operation takes one. */
  body?: JsonSchema
}

interface OpenApiDocument {
  paths: Record<
    string,
    Record<
      string,
      {
        parameters?: Parameter[]
        requestBody?: { content?: Record<string, { schema?: JsonSchema }> }
      }
    >
  >
}

export function operationsOf(doc: OpenApiDocument): Operation[] {
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      parameters: op.parameters ?? [],
      body: op.requestBody?.content?.['application/json']?.schema,
    })),
  )
}

/** A parameter's value as it goes on the wire. */
export type WireValue =
  /** Text, percent-encoded on the way out. */
  | { text: string }
  /** Already on the wire: escapes that a decoder has to refuse. */
  | { raw: string }
  /** The parameter repeated: an array where a scalar is expected. */
  | { list: string[] }
  | { absent: true }

const b64 = (s: string | Uint8Array) => Buffer.from(s).toString('base64url')

/** Numbers a coercion might take for one: huge, negative, NaN, not numbers at all. */
const NUMBERS = [
  ...['', ' ', '0', '-0', '-1', '1.5', '1e309', '-1e309', '1e-400', 'NaN', 'Infinity'],
  ...['-Infinity', '0x1F', '1_000', '9007199254740993', '-9223372036854775809', '9'.repeat(400)],
  ...['null', 'true', 'undefined', '[]', '{}'],
]

/**
 * Instants at and past the edges: JavaScript's (±8.64e15 ms: years -271821 and 275760),
 * Postgres's (no year 0, nothing before 4713 BC), the api's own (1970 to 9999), and
 * texts that look like dates and are not.
 */
const DATES = [
  ...['0000-01-01T00:00:00Z', '0001-01-01T00:00:00Z', '-271821-04-20T00:00:00Z'],
  ...['-271821-04-19T00:00:00Z', '+275760-09-13T00:00:00Z', '+275760-09-14T00:00:00Z'],
  ...['275760-09-13T00:00:00Z', '1969-12-31T23:59:59.999Z', '1970-01-01T00:00:00Z'],
  ...['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999-00:01', '0000-01-01T23:59:59+23:59'],
  ...['2024-02-30T00:00:00Z', '2024-13-01T00:00:00Z', '2024-01-01T24:00:00Z'],
  ...['2024-01-01T23:59:60Z', '2024-01-01T00:00:00.123456789012Z', '2024-01-01T00:00:00+24:00'],
  ...['2024-01-01', '1700000000000', '2024-01-01T00:00:00'],
]

/** Text no id, enum or free-text field expects: NULs, length, paths, markup, SQL. */
const STRINGS = [
  ...['\u0000', 'd1\u0000', 'a\u0000b', '\uFFFF', '\uFEFF', '🛸', 'é', '\r\nX-Injected: 1'],
  ...['x'.repeat(64), 'x'.repeat(65), 'x'.repeat(101), 'x'.repeat(10_000)],
  ...['../../../etc/passwd', '..', '.', '/', '|', '<script>alert(1)</script>'],
  ...["' OR '1'='1", '"; DROP TABLE drones; --', '%', '%00', ' d1', 'd1 ', 'D1', 'd1\n'],
  ...['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'],
]

/**
 * Pagination cursors that are not ours: base64url of junk, of dates out of every range,
 * of NULs, of the wrong number of fields, and texts that are not base64url at all.
 */
const CURSORS = [
  b64(new Uint8Array([0xff, 0xfe, 0x00, 0x80, 0xc0, 0xaf])),
  b64('-271821-04-20T00:00:00.000Z|x'),
  b64('+275760-09-13T00:00:00.000Z|x'),
  b64('0000-01-01T00:00:00.000Z|x'),
  b64('2024-01-01T00:00:00.000Z|a\u0000b'),
  b64('\u0000|\u0000'),
  b64('|'),
  b64('x'),
  b64('2024-01-01T00:00:00.000Z|'),
  b64('2024-01-01T00:00:00.000Z|a|b'),
  b64('1|x'),
  b64('NaN|x'),
  b64(`2024-01-01T00:00:00.000Z|${'x'.repeat(65)}`),
  'a+b/c==',
  '====',
  '!!!!',
]

/** Every text the table sends for every parameter (percent-encoded). */
export const HOSTILE_TEXTS: readonly string[] = [...NUMBERS, ...DATES, ...STRINGS, ...CURSORS]

/** Escapes sent as they are: truncated, overlong, surrogates, past U+10FFFF, not hex. */
export const RAW_ESCAPES: readonly string[] = [
  ...['%', '%%', '%zz', '%E0%A4%A', '%C0%AF', '%C0%80', '%FF%FE', '%ED%A0%80', '%F4%90%80%80'],
  ...['%00', '%2500', '%u0000', '+', '%20'],
]

/** The hostile values of one parameter, given a valid one to repeat. */
export function hostileValues(valid: string): WireValue[] {
  return [
    { absent: true },
    ...HOSTILE_TEXTS.map((text) => ({ text })),
    ...RAW_ESCAPES.map((raw) => ({ raw })),
    { list: [valid, valid] },
    { list: [valid, ''] },
    { list: Array<string>(20).fill(valid) },
  ]
}

/**
 * Percent-encodes any JavaScript string, lone surrogates included (as the WTF-8 bytes a
 * careless client would send), where encodeURIComponent throws.
 */
export function encodeText(s: string): string {
  let out = ''
  for (const ch of s) {
    const cp = ch.codePointAt(0)!
    if (cp >= 0xd800 && cp <= 0xdfff) {
      const bytes = [0xed, 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)]
      out += bytes.map((b) => `%${b.toString(16).toUpperCase()}`).join('')
    } else out += encodeURIComponent(ch)
  }
  return out
}

/** Header values as an HTTP client could send them (no NULs, no line breaks, Latin-1). */
export const isHeaderSafe = (s: string) => /^[\t\x20-\x7e\x80-\xff]*$/.test(s)

/** What one request sends: each parameter's value (absent: the valid one) and a body. */
export interface Variant {
  values: Record<string, WireValue>
  body?: Body
}

/** A body as sent: text (sent as UTF-8) or raw bytes, and its content type if any. */
export interface Body {
  payload: string | Buffer
  contentType?: string
}

export interface BuiltRequest {
  method: string
  url: string
  headers: Record<string, string>
  payload?: string | Buffer
}

/** The request an operation gets for a variant; parameters not in it take `valid`. */
export function buildRequest(
  op: Operation,
  valid: (p: Parameter) => string,
  variant: Variant,
): BuiltRequest {
  const wire = (p: Parameter): WireValue => variant.values[p.name] ?? { text: valid(p) }
  const one = (v: WireValue): string =>
    'text' in v
      ? encodeText(v.text)
      : 'raw' in v
        ? v.raw
        : 'list' in v
          ? encodeText(v.list[0]!)
          : ''
  let path = op.path
  const query: string[] = []
  const headers: Record<string, string> = {}
  for (const p of op.parameters) {
    const v = wire(p)
    if (p.in === 'path') path = path.replace(`{${p.name}}`, 'absent' in v ? '' : one(v))
    else if (p.in === 'query') {
      if ('list' in v) for (const item of v.list) query.push(`${p.name}=${encodeText(item)}`)
      else if (!('absent' in v)) query.push(`${p.name}=${one(v)}`)
    } else if ('text' in v && isHeaderSafe(v.text)) headers[p.name] = v.text
    else if (!('absent' in v)) headers[p.name] = valid(p)
  }
  if (variant.body?.contentType !== undefined) headers['content-type'] = variant.body.contentType
  return {
    method: op.method,
    url: query.length > 0 ? `${path}?${query.join('&')}` : path,
    headers,
    ...(variant.body !== undefined && { payload: variant.body.payload }),
  }
}

/** JSON text with the keys in order, `__proto__` included as an own key. */
export const jsonObject = (entries: [string, unknown][]) =>
  `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`

/** JSON values no body field expects. */
export const HOSTILE_JSON: readonly unknown[] = [
  ...[null, true, false, 0, -0, -1, 1e308, -1e308, 5e-324, 50.000000001, 2 ** 53 + 2],
  ...[[], [1], {}, { __proto__: null, polluted: 1 }, [[[[[]]]]], ''],
  ...NUMBERS,
  ...DATES,
  ...STRINGS,
]

/** Whole bodies no route expects, each with the content type it is sent as. */
export function hostileBodies(valid: [string, unknown][]): Body[] {
  const json = 'application/json'
  const validJson = jsonObject(valid)
  return [
    ...['', ' ', 'null', '[]', '"text"', '123', '{', '{"a":', '{"a":1}}', '\u0000'].map(
      (payload) => ({ payload, contentType: json }),
    ),
    { payload: jsonObject([...valid, ['__proto__', { polluted: 1 }]]), contentType: json },
    { payload: jsonObject([['__proto__', { polluted: 1 }], ...valid]), contentType: json },
    {
      payload: jsonObject([...valid, ['constructor', { prototype: { polluted: 1 } }]]),
      contentType: json,
    },
    { payload: jsonObject([...valid, ...valid]), contentType: json }, // every key twice
    { payload: '['.repeat(100_000) + ']'.repeat(100_000), contentType: json },
    { payload: `{"pad":"${'x'.repeat(2 * 2 ** 20)}"}`, contentType: json }, // past bodyLimit
    { payload: '{"fleet":"\\ud800"}', contentType: json },
    ...[
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json; charset=utf-16',
      'application/json; charset=iso-8859-1',
      'application/xml',
      'application/json, text/plain',
      '*/*',
      'application/jsonx',
    ].map((contentType) => ({ payload: validJson, contentType })),
    { payload: validJson }, // no content type
    // Bytes that are not UTF-8: a BOM of UTF-16, an overlong '/' inside a string.
    { payload: Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00]), contentType: json },
    {
      payload: Buffer.concat([
        Buffer.from('{"fleet":"'),
        Buffer.from([0xc0, 0xaf]),
        Buffer.from('"}'),
      ]),
      contentType: json,
    },
  ]
}

// ---- fast-check: random mixtures of the table and of random values ----

/** Instants anywhere JavaScript has them (years -271821 to 275760), as ISO text. */
const anyInstant = fc.date({ noInvalidDate: true }).map((d) => d.toISOString())

/**
 * Any value for a parameter whose valid value is `valid`: mostly that value or none, so
 * that a request carries one or two hostile values and gets past the others' validation
 * to the handler.
 */
export function wireValueArb(valid: string): fc.Arbitrary<WireValue> {
  const text: fc.Arbitrary<string> = fc.oneof(
    fc.constantFrom(...HOSTILE_TEXTS),
    fc.string({ unit: 'binary', maxLength: 300 }),
    anyInstant,
    fc.double().map(String),
    fc.bigInt().map(String),
    fc.uint8Array({ maxLength: 60 }).map(b64),
    fc
      .tuple(anyInstant, fc.string({ unit: 'binary', maxLength: 70 }))
      .map(([at, id]) => b64(`${at}|${id}`)),
  )
  return fc.oneof(
    { arbitrary: fc.constant<WireValue>({ text: valid }), weight: 6 },
    { arbitrary: fc.constant<WireValue>({ absent: true }), weight: 3 },
    { arbitrary: text.map((t): WireValue => ({ text: t })), weight: 2 },
    { arbitrary: fc.constantFrom(...RAW_ESCAPES).map((raw): WireValue => ({ raw })), weight: 1 },
    {
      arbitrary: fc
        .array(fc.oneof(fc.constant(valid), text), { minLength: 2, maxLength: 5 })
        .map((list): WireValue => ({ list })),
      weight: 1,
    },
  )
}

/** A JSON body built from the valid one: fields changed, dropped, added, or none at all. */
export function bodyArb(valid: [string, unknown][]): fc.Arbitrary<Variant['body']> {
  const field = (v: unknown) =>
    fc.oneof(
      { arbitrary: fc.constant(v), weight: 4 },
      { arbitrary: fc.constantFrom(...HOSTILE_JSON), weight: 1 },
      { arbitrary: fc.jsonValue(), weight: 1 },
    )
  const fields = fc.tuple(
    ...valid.map(([k, v]) =>
      fc.option(
        field(v).map((x): [string, unknown] => [k, x]),
        { nil: undefined },
      ),
    ),
  )
  const extra = fc.array(
    fc.tuple(
      fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.string()),
      fc.jsonValue(),
    ),
    { maxLength: 3 },
  )
  return fc.oneof(
    {
      arbitrary: fc.tuple(fields, extra).map(([f, e]) => ({
        payload: jsonObject([...f.filter((x) => x !== undefined), ...e]),
        contentType: 'application/json',
      })),
      weight: 4,
    },
    { arbitrary: fc.constantFrom(...hostileBodies(valid)), weight: 1 },
    {
      arbitrary: fc
        .jsonValue()
        .map((v) => ({ payload: JSON.stringify(v), contentType: 'application/json' })),
      weight: 1,
    },
  )
}
