// Reading the deployment files as Docker and Compose do, for the tests that hold them
// against the code: docker-compose.yml with its ${VAR} substitution, the Dockerfiles'
// instructions by stage, and .env.example.
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { YAMLMap, YAMLSeq, parse } from 'yaml'
import type { Tags } from 'yaml'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))

export interface ComposeService {
  image?: string
  build?: { context: string; dockerfile?: string }
  command?: string[]
  environment?: Record<string, string>
  ports?: string[]
  volumes?: string[]
  depends_on?: Record<string, { condition?: string }>
  healthcheck?: { test: string[] | string }
  profiles?: string[]
  deploy?: { replicas?: number }
}

export interface Compose {
  services: Record<string, ComposeService>
  volumes?: Record<string, unknown>
}

/** The raw text of a file at the repository root. */
export const readRepoFile = (path: string) => readFileSync(join(ROOT, path), 'utf8')

/** The Compose files docker compose reads when .env sets none (COMPOSE_FILE). */
export const COMPOSE_FILES = ['docker-compose.yml', 'docker-compose.scale.yml']

/** Every `${VAR...}` the Compose files refer to. */
export function composeVariables(): Set<string> {
  const text = COMPOSE_FILES.map(readRepoFile).join('\n')
  const names = [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)]
  return new Set(names.map((m) => m[1]!))
}

/** Compose's merge tags (`!reset`, `!override`), read as markers for mergeCompose. */
const RESET = Symbol('!reset')
const OVERRIDE = Symbol('!override')
const marked = (mark: symbol) => (value: unknown) => ({ [mark]: value })
const MERGE_TAGS: Tags = [RESET, OVERRIDE].flatMap((mark): Tags => {
  const tag = mark.description!
  const resolve = marked(mark)
  return [
    { tag, resolve },
    { tag, collection: 'seq', nodeClass: YAMLSeq, resolve },
    { tag, collection: 'map', nodeClass: YAMLMap, resolve },
  ]
})

const isObject = (v: unknown): v is Record<string | symbol, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v)

/** A Compose path whose sequence the later file replaces instead of appending to. */
const REPLACED = /^services\.[^.]+\.(command|entrypoint|healthcheck\.test)$/

/**
 * `over` merged onto `base` as Compose merges its files (the Compose Specification's
 * "Merge"): mappings key by key, sequences appended (command, entrypoint and a health
 * check's test replaced), scalars replaced; `!reset` removes a value, `!override`
 * replaces it whole.
 */
function mergeCompose(base: unknown, over: unknown, path = ''): unknown {
  if (isObject(over) && RESET in over) return undefined
  if (isObject(over) && OVERRIDE in over) return toJs(over[OVERRIDE])
  if (Array.isArray(base) && Array.isArray(over) && !REPLACED.test(path)) {
    const [before, after] = [base as unknown[], over as unknown[]]
    return [...before, ...after.filter((v) => !before.includes(v))]
  }
  if (!isObject(base) || !isObject(over)) return toJs(over)
  const merged: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(over)) {
    const next = mergeCompose(base[key], value, path === '' ? key : `${path}.${key}`)
    if (next === undefined) delete merged[key]
    else merged[key] = next
  }
  return merged
}

/** A value with the merge markers left by a first file taken out. */
function toJs(value: unknown): unknown {
  if (isObject(value) && (RESET in value || OVERRIDE in value)) return undefined
  if (Array.isArray(value)) return value.map(toJs)
  if (isObject(value)) {
    const entries = Object.entries(value).map(([k, v]) => [k, toJs(v)] as const)
    return Object.fromEntries(entries.filter(([, v]) => v !== undefined))
  }
  return value
}

/**
 * The Compose files of `vars` (its .env) as Compose sees them: COMPOSE_FILE's files
 * (`:`-separated; default docker-compose.yml) merged in order, YAML merge keys applied,
 * `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and `${VAR:+alt}` substituted (`:` forms
 * treat empty as unset), and only the services of the active profiles
 * (COMPOSE_PROFILES).
 */
export function loadCompose(vars: Record<string, string>): Compose {
  const files = (vars.COMPOSE_FILE || 'docker-compose.yml').split(':')
  const substitute = (value: unknown): unknown => {
    if (typeof value === 'string') return interpolate(value, vars)
    if (Array.isArray(value)) return value.map(substitute)
    if (isObject(value)) {
      const marks = Object.getOwnPropertySymbols(value).map((s) => [s, substitute(value[s])])
      const entries = Object.entries(value).map(([k, v]) => [k, substitute(v)])
      return Object.fromEntries([...entries, ...marks])
    }
    return value
  }
  const docs = files.map((file) =>
    substitute(parse(readRepoFile(file), { merge: true, customTags: MERGE_TAGS })),
  )
  const compose = docs.reduce((merged, doc) => mergeCompose(merged, doc), {}) as Compose
  const profiles = (vars.COMPOSE_PROFILES ?? '').split(',').filter(Boolean)
  compose.services = Object.fromEntries(
    Object.entries(compose.services).filter(
      ([, s]) => s.profiles === undefined || s.profiles.some((p) => profiles.includes(p)),
    ),
  )
  return compose
}

function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(
    /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}/g,
    (_, name: string, op: string | undefined, arg: string | undefined) => {
      const value = vars[name]
      const set = value !== undefined && (op?.startsWith(':') !== true || value !== '')
      switch (op?.replace(':', '')) {
        case undefined:
          return value ?? ''
        case '-':
          return set ? value : (arg ?? '')
        case '?':
          if (!set) throw new Error(`${name}: ${arg}`)
          return value
        case '+':
          return set ? (arg ?? '') : ''
        default:
          throw new Error(`unknown substitution ${op} in ${text}`)
      }
    },
  )
}

/** `KEY=value` lines of .env.example (comments skipped). */
export function envExample(): Record<string, string> {
  const lines = readRepoFile('.env.example').split('\n')
  return Object.fromEntries(
    lines
      .map((l) => /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(l.trim()))
      .filter((m) => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  )
}

/**
 * The settings .env.example gives in its comments (`#   KEY=value`), each run of
 * consecutive lines one group: what to set together for one layout.
 */
function envExampleGroups(): Record<string, string>[] {
  const groups: Record<string, string>[] = [{}]
  for (const line of readRepoFile('.env.example').split('\n')) {
    const m = /^#\s+([A-Z_][A-Z0-9_]*)=(\S+)$/.exec(line)
    if (m !== null) groups.at(-1)![m[1]!] = m[2]!
    else if (Object.keys(groups.at(-1)!).length > 0) groups.push({})
  }
  return groups.filter((g) => Object.keys(g).length > 0)
}

const groupSetting = (variable: string) => {
  const group = envExampleGroups().find((g) => variable in g)
  if (group === undefined) throw new Error(`.env.example: no commented ${variable}=…`)
  return group
}

/** The cluster profile's settings in .env.example (with COMPOSE_PROFILES). */
export const envExampleCluster = () => groupSetting('COMPOSE_PROFILES')

/** The settings of several api instances in .env.example (with COMPOSE_FILE). */
export const envExampleScale = () => groupSetting('COMPOSE_FILE')

export interface Instruction {
  keyword: string
  args: string
}

/** A Dockerfile's instructions, continuation lines joined, split into its stages. */
export function dockerfileStages(path: string): Instruction[][] {
  const text = readRepoFile(path).replace(/\\\n/g, ' ')
  const stages: Instruction[][] = []
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line)
    if (m === null || line.trimStart().startsWith('#')) continue
    const instruction = { keyword: m[1]!.toUpperCase(), args: m[2]!.trim() }
    if (instruction.keyword === 'FROM') stages.push([])
    stages.at(-1)?.push(instruction)
  }
  return stages
}

/** An exec-form (`["a", "b"]`) or shell-form instruction argument as words. */
export function execForm(args: string): string[] {
  return args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/)
}

/** `host:container` (or `container`) port mappings as numbers. */
export function portMappings(ports: string[] = []): { host: number; container: number }[] {
  return ports.map((p) => {
    const parts = p.split(':')
    const container = Number(parts.at(-1))
    return { host: parts.length > 1 ? Number(parts.at(-2)) : container, container }
  })
}

export interface Mount {
  /** A named volume, or a path on the host (`./…`) for a bind mount. */
  source: string
  target: string
  named: boolean
  readOnly: boolean
}

/** A service's `volumes` (short syntax: `source:target[:mode]`). */
export function mounts(service: ComposeService): Mount[] {
  return (service.volumes ?? []).map((volume) => {
    const [source = '', target = '', mode = ''] = volume.split(':')
    return {
      source,
      target,
      named: !/^[./~]/.test(source),
      readOnly: mode.split(',').includes('ro'),
    }
  })
}

/**
 * Containers' files on this machine, to run what the services run without a Docker
 * engine: each named volume is a folder of `dir` (created empty, as Docker does on first
 * use), each bind mount its file in the repository.
 */
export function hostFiles(dir: string) {
  /** Where `path` inside `service`'s container is here; undefined: a path of its image. */
  const path = (service: ComposeService, inside: string) => {
    const mount = mounts(service)
      .filter((m) => inside === m.target || inside.startsWith(`${m.target}/`))
      .sort((a, b) => b.target.length - a.target.length)[0]
    if (mount === undefined) return undefined
    const rest = inside.slice(mount.target.length)
    if (!mount.named) return { mount, host: join(ROOT, mount.source, rest) }
    mkdirSync(join(dir, mount.source), { recursive: true })
    return { mount, host: join(dir, mount.source, rest) }
  }
  /** `service`'s environment, each value that is a path in one of its mounts moved here. */
  const env = (service: ComposeService): Record<string, string> =>
    Object.fromEntries(
      Object.entries(service.environment ?? {}).map(([k, v]) => [k, path(service, v)?.host ?? v]),
    )
  /** Runs a one-shot service's command (a shell script) here; returns what it printed. */
  const run = (service: ComposeService): string => {
    const [command, ...args] = service.command ?? []
    if (command !== 'sh') throw new Error(`not a shell script: ${service.command?.join(' ')}`)
    const moved = args.map((a) => path(service, a)?.host ?? a)
    return execFileSync('sh', moved, {
      env: { PATH: process.env.PATH, ...env(service) },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
  }
  return { path, env, run }
}
