// docker-compose.yml (alone, and with docker-compose.scale.yml), the Dockerfiles, the
// haproxy configurations and .env.example held against the code: no Docker engine runs
// here, so these read the files as Compose and Docker would and check what a
// `docker compose up` depends on.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import Fastify from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import { resolveTokenSecret } from '../packages/auth/src/secret.ts'
import { serverOptions } from '../apps/api/src/app.ts'
import { liveOrigins, loadConfig as loadApiConfig } from '../apps/api/src/config.ts'
import { defaultInstanceId } from '../apps/api/src/plugins/app/leadership.ts'
import { loadConfig as loadBrokerConfig } from '../apps/broker/src/config.ts'
import { BROKER_NODE_FLAGS } from '../apps/broker/src/node-flags.ts'
import { loadConfig as loadSimConfig } from '../apps/drone-sim/src/config.ts'
import { loadStartConfig } from '../scripts/start-config.ts'
import {
  ROOT,
  composeVariables,
  dockerfileStages,
  envExample,
  envExampleCluster,
  envExampleScale,
  execForm,
  hostFiles,
  loadCompose,
  mounts,
  portMappings,
  readRepoFile,
} from './deploy-files.ts'
import type { Compose, ComposeService } from './deploy-files.ts'

const APPS = ['broker', 'api', 'drone-sim'] as const
type App = (typeof APPS)[number]

const broker = loadBrokerConfig({})
const api = loadApiConfig({})
/** The ports each app listens on with its default configuration. */
const DEFAULT_PORTS: Record<App, number[]> = {
  broker: [broker.MQTT_PORT, broker.MQTT_WS_PORT, broker.BROKER_METRICS_PORT],
  api: [api.HTTP_PORT],
  'drone-sim': [],
}
/** The ports published to the host: what clients and browsers use. */
const PUBLISHED: Record<App, number[]> = {
  broker: [broker.MQTT_PORT, broker.MQTT_WS_PORT],
  api: [api.HTTP_PORT],
  'drone-sim': [],
}
/**
 * Variables a container cannot do without, though the apps have fallbacks for one
 * machine: a secret generated per container would differ between them (DATA_DIR is where
 * the `secrets` service put the shared one), localhost is the container itself, and no
 * DATABASE_URL means PGlite inside the container.
 */
const REQUIRED: Record<App, string[]> = {
  broker: ['DATA_DIR'],
  api: ['DATA_DIR', 'MQTT_URL', 'DATABASE_URL', 'DATABASE_PASSWORD_FILE'],
  'drone-sim': ['DATA_DIR', 'MQTT_URL'],
}
/** What a user may put in .env: .env.example leaves the secrets empty. */
const USER_SECRETS = { DEVICE_TOKEN_SECRET: 's'.repeat(48), POSTGRES_PASSWORD: 'p@ss/w:rd%41' }
const ONE_BROKER = envExample()
const CLUSTER = { ...ONE_BROKER, ...envExampleCluster() }
/** Several api instances (docker-compose.scale.yml), on one broker or on the cluster. */
const SCALED = { ...ONE_BROKER, ...envExampleScale() }
const FULL = { ...CLUSTER, ...envExampleScale() }
const LAYOUTS = [
  ['one broker', ONE_BROKER],
  ['the cluster profile', CLUSTER],
  ['several apis', SCALED],
  ['several apis on the cluster', FULL],
] as const
/** Debian's haproxy (package haproxy; .ci/run installs it). */
const HAPROXY = '/usr/sbin/haproxy'

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'skyline-compose-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * docker-compose.yml with `vars` as its .env, after its `secrets` service has run on
 * this machine, its volumes folders of `dir` (deploy-files.ts hostFiles): `env(name)` is
 * a service's environment with its volumes' paths moved here, as its app reads them.
 */
function deploy(vars: Record<string, string>, dir = tempDir()) {
  const compose = loadCompose(vars)
  const host = hostFiles(dir)
  host.run(compose.services.secrets!)
  const env = (name: string) => host.env(compose.services[name]!)
  // The files the `secrets` service writes, as Postgres reads its password: bash's
  // `$(< file)` (the image's file_env) drops the trailing line breaks.
  const written = env('secrets')
  const secrets = () => ({
    token: readFileSync(written.DEVICE_TOKEN_SECRET_FILE!, 'utf8'),
    password: readFileSync(written.POSTGRES_PASSWORD_FILE!, 'utf8').replace(/\n+$/, ''),
  })
  return { compose, host, env, secrets }
}

const dockerfileOf = (app: App) => `apps/${app}/Dockerfile`

/** The app a service is built from, if any. */
function appOf(service: ComposeService): App | undefined {
  return APPS.find((app) => service.build?.dockerfile === dockerfileOf(app))
}

function servicesOf(compose: Compose, app: App): [string, ComposeService][] {
  return Object.entries(compose.services).filter(([, s]) => appOf(s) === app)
}

/** The service a URL points at, and the port. */
function target(url: string): { host: string; port: number } {
  const u = new URL(url)
  return { host: u.hostname, port: Number(u.port) }
}

describe('docker-compose.yml', () => {
  it('builds every app from its Dockerfile, with the repository as the context', () => {
    const compose = loadCompose(FULL)
    for (const app of APPS) expect(servicesOf(compose, app).length, app).toBeGreaterThan(0)
    for (const [name, service] of Object.entries(compose.services)) {
      if (service.build === undefined) {
        expect(service.image, `${name} has an image or a build`).toBeTruthy()
        continue
      }
      const context = resolve(ROOT, service.build.context)
      expect(context, name).toBe(resolve(ROOT))
      expect(existsSync(join(context, service.build.dockerfile ?? 'Dockerfile')), name).toBe(true)
    }
    const mounted = Object.values(compose.services).flatMap((s) => s.volumes ?? [])
    for (const volume of mounted.filter((v) => v.startsWith('./'))) {
      expect(existsSync(join(ROOT, volume.split(':')[0]!)), volume).toBe(true)
    }
  })

  it('publishes the ports the apps listen on by default, on the same host ports', () => {
    const compose = loadCompose(ONE_BROKER)
    for (const app of APPS) {
      for (const [name, service] of servicesOf(compose, app)) {
        const ports = portMappings(service.ports)
        expect(
          ports.map((p) => p.container),
          name,
        ).toEqual(PUBLISHED[app])
        for (const p of ports) expect(p.host, `${name} ${p.container}`).toBe(p.container)
      }
    }
  })

  it.each(LAYOUTS)(
    'gives every app the variables it needs, with values it accepts (%s)',
    (_, vars) => {
      const { compose, host, secrets } = deploy(vars)
      const brokers = new Set(['mqtt-lb', ...servicesOf(compose, 'broker').map(([name]) => name)])
      for (const app of APPS) {
        for (const [name, service] of servicesOf(compose, app)) {
          const env = host.env(service)
          for (const variable of REQUIRED[app])
            expect(env[variable], `${name} ${variable}`).toBeTruthy()
          // One secret for all, or the broker refuses the others' tokens.
          expect(resolveTokenSecret(env.DEVICE_TOKEN_SECRET, env.DATA_DIR!), name).toBe(
            secrets().token,
          )
          if (env.MQTT_URL !== undefined) {
            const { host, port } = target(env.MQTT_URL)
            expect([...brokers], `${name} MQTT_URL`).toContain(host)
            expect(compose.services[host], `${name} MQTT_URL`).toBeDefined()
            expect(port, `${name} MQTT_URL`).toBe(broker.MQTT_PORT)
          }
          if (app === 'broker') expect(() => loadBrokerConfig(env), name).not.toThrow()
          if (app === 'api') expect(() => loadApiConfig(env), name).not.toThrow()
          if (app === 'drone-sim') {
            const sim = loadSimConfig(service.command ?? [], env)
            const demo = loadStartConfig({}).sim
            expect([sim.drones, sim.stations, sim.timeScale], name).toEqual([
              demo.SIM_DRONES,
              demo.SIM_STATIONS,
              demo.SIM_TIME_SCALE,
            ])
          }
        }
      }
    },
  )

  it("lets the map open the live stream from the host's browser, and from PUBLIC_ORIGIN", () => {
    const moved = { ...ONE_BROKER, HTTP_PORT: '8080', PUBLIC_ORIGIN: 'https://skyline.example' }
    const cases: [Record<string, string>, number][] = [
      [ONE_BROKER, api.HTTP_PORT], // .env.example's host port is the api's own
      [moved, 8080],
    ]
    for (const [vars, hostPort] of cases) {
      const config = loadApiConfig(deploy(vars).env('api'))
      // Inside its container the api listens on its default port; browsers use the host's.
      const origins = liveOrigins(config, api.HTTP_PORT)
      expect(origins).toContain(`http://localhost:${hostPort}`)
      expect(origins).toContain(`http://127.0.0.1:${hostPort}`)
    }
    const config = loadApiConfig(deploy(moved).env('api'))
    expect(liveOrigins(config, api.HTTP_PORT)).toContain('https://skyline.example')
  })

  it('gives every broker and the api the same OIDC issuer from .env, and none by default', () => {
    const oidc = {
      ...CLUSTER,
      OIDC_ISSUER: 'https://id.example/realms/skyline',
      OIDC_AUDIENCE: 'skyline',
      OIDC_ROLE_CLAIM: 'realm_access.roles',
      OIDC_WEB_CLIENT_ID: 'skyline-map',
    }
    const { compose, env } = deploy(oidc)
    const brokers = servicesOf(compose, 'broker').map(([, s]) => loadBrokerConfig(s.environment!))
    const apiConfig = loadApiConfig(env('api'))
    expect(brokers.length).toBeGreaterThan(1)
    for (const c of [...brokers, apiConfig])
      expect([c.OIDC_ISSUER, c.OIDC_AUDIENCE, c.OIDC_ROLE_CLAIM, c.OIDC_FLEET_CLAIM]).toEqual([
        'https://id.example/realms/skyline',
        'skyline',
        'realm_access.roles',
        'fleet',
      ])
    expect([apiConfig.OIDC_WEB_CLIENT_ID, apiConfig.OIDC_WEB_SCOPE]).toEqual([
      'skyline-map',
      'openid',
    ])
    const plain = loadApiConfig(deploy(ONE_BROKER).env('api'))
    expect(plain.OIDC_ISSUER).toBeUndefined()
    expect(plain.OIDC_CLIENT_ID).toBeUndefined()
    expect(plain.OIDC_WEB_CLIENT_ID).toBeUndefined()
  })

  it('lets the api and the demo fleet get their MQTT tokens from the issuer', () => {
    const { compose, env } = deploy({
      ...ONE_BROKER,
      OIDC_ISSUER: 'https://id.example/realms/skyline',
      OIDC_AUDIENCE: 'skyline',
      API_OIDC_CLIENT_ID: 'skyline-api',
      API_OIDC_CLIENT_SECRET: 'api-secret',
      SIM_OIDC_CLIENT_ID: '{fleet}-{device}',
      SIM_OIDC_CLIENT_SECRET: 'device-secret',
    })
    const apiConfig = loadApiConfig(env('api'))
    expect([apiConfig.OIDC_CLIENT_ID, apiConfig.OIDC_CLIENT_SECRET]).toEqual([
      'skyline-api',
      'api-secret',
    ])
    const sim = compose.services.sim!
    expect(loadSimConfig(sim.command as string[], sim.environment!).tokens).toEqual({
      kind: 'issuer',
      issuer: 'https://id.example/realms/skyline',
      audience: 'skyline',
      scope: undefined,
      clientIdTemplate: '{fleet}-{device}',
      clientSecret: 'device-secret',
    })
    const plain = loadCompose(ONE_BROKER).services.sim!
    expect(loadSimConfig(plain.command as string[], plain.environment!).tokens).toMatchObject({
      kind: 'secret',
    })
  })

  it("points the api's DATABASE_URL at the postgres service with its credentials", () => {
    const compose = loadCompose(ONE_BROKER)
    const postgres = compose.services.postgres!
    expect(postgres.image).toMatch(/^postgres:16/)
    const url = new URL(compose.services.api!.environment!.DATABASE_URL!)
    expect(url.hostname).toBe('postgres')
    expect(Number(url.port || 5432)).toBe(5432)
    expect(url.username).toBe(postgres.environment!.POSTGRES_USER)
    // The password is the file both read (below), never in the environment.
    expect(url.password).toBe('')
    expect(postgres.environment!.POSTGRES_PASSWORD).toBeUndefined()
    expect(url.pathname).toBe(`/${postgres.environment!.POSTGRES_DB}`)
    expect(postgres.volumes?.some((v) => v.endsWith(':/var/lib/postgresql/data'))).toBe(true)
  })

  it('starts the api once Postgres is healthy, and waits only on services with a health check', () => {
    const compose = loadCompose(FULL)
    const postgres = compose.services.postgres!
    expect([postgres.healthcheck?.test].flat().join(' ')).toMatch(/pg_isready/)
    expect(compose.services.api!.depends_on?.postgres?.condition).toBe('service_healthy')
    for (const [name, service] of Object.entries(compose.services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        const needed = compose.services[dependency]
        expect(needed, `${name} depends on ${dependency}`).toBeDefined()
        if (condition !== 'service_healthy') continue
        const app = appOf(needed!)
        const checked =
          needed!.healthcheck !== undefined ||
          (app !== undefined && finalStage(app).some((i) => i.keyword === 'HEALTHCHECK'))
        expect(checked, `${name} waits for ${dependency} to be healthy`).toBe(true)
      }
    }
  })

  it('in the cluster profile puts every broker on one Redis, behind one address', () => {
    const single = loadCompose(ONE_BROKER)
    expect(single.services.broker!.environment!.REDIS_URL ?? '').toBe('')
    expect(target(single.services.api!.environment!.MQTT_URL!).host).toBe('broker')

    const compose = loadCompose(CLUSTER)
    const brokers = servicesOf(compose, 'broker')
    expect(brokers.length).toBeGreaterThanOrEqual(2)
    const redisUrls = new Set(brokers.map(([, s]) => s.environment?.REDIS_URL))
    expect(redisUrls.size, 'every broker on the same Redis').toBe(1)
    const redis = target([...redisUrls][0]!)
    expect(compose.services[redis.host]?.image).toMatch(/^redis:/)
    for (const name of ['api', 'sim']) {
      expect(target(compose.services[name]!.environment!.MQTT_URL!).host, name).toBe('mqtt-lb')
    }
    // The load balancer listens on the brokers' ports and sends to every broker.
    const lb = compose.services['mqtt-lb']!
    const config = readRepoFile('deploy/haproxy.cfg')
    const binds = [...config.matchAll(/^\s*bind\s+:(\d+)/gm)].map((m) => Number(m[1]))
    expect(binds).toEqual(PUBLISHED.broker)
    expect(portMappings(lb.ports).map((p) => p.container)).toEqual(PUBLISHED.broker)
    for (const backend of config.split(/^backend /m).slice(1)) {
      const servers = [...backend.matchAll(/^\s*server\s+\S+\s+([^:\s]+):(\d+)/gm)]
      expect(servers.map((s) => s[1]).sort()).toEqual(brokers.map(([name]) => name).sort())
      expect(new Set(servers.map((s) => Number(s[2]))).size).toBe(1)
      expect(PUBLISHED.broker).toContain(Number(servers[0]![2]))
    }
  })

  it('with docker-compose.scale.yml runs replicas of the api behind http-lb, alone on HTTP_PORT', () => {
    for (const vars of [SCALED, FULL]) {
      const compose = loadCompose(vars)
      const apiService = compose.services.api!
      // No fixed host port for replicas to fight over: http-lb publishes the api's.
      expect(apiService.ports ?? []).toEqual([])
      expect(apiService.deploy?.replicas).toBeGreaterThanOrEqual(2)
      const lb = compose.services['http-lb']!
      expect(lb.image).toMatch(/^haproxy:/)
      expect(portMappings(lb.ports)).toEqual([{ host: api.HTTP_PORT, container: api.HTTP_PORT }])
      expect(lb.depends_on?.api?.condition).toBe('service_healthy')
      const published = Object.values(compose.services).flatMap((s) => portMappings(s.ports))
      const hostPorts = published.map((p) => p.host)
      expect(new Set(hostPorts).size, `host ports ${hostPorts.join(' ')}`).toBe(hostPorts.length)
    }
    // Moved with HTTP_PORT, the map and the origins the live stream admits with it.
    const moved = deploy({ ...SCALED, HTTP_PORT: '8080' })
    expect(portMappings(moved.compose.services['http-lb']!.ports)).toEqual([
      { host: 8080, container: api.HTTP_PORT },
    ])
    expect(liveOrigins(loadApiConfig(moved.env('api')), api.HTTP_PORT)).toContain(
      'http://localhost:8080',
    )
    // Without it, exactly the single api of today.
    for (const vars of [ONE_BROKER, CLUSTER]) {
      const compose = loadCompose(vars)
      expect(compose.services['http-lb'], 'no http-lb').toBeUndefined()
      expect(compose.services.api!.deploy).toBeUndefined()
      expect(portMappings(compose.services.api!.ports)).toEqual([
        { host: api.HTTP_PORT, container: api.HTTP_PORT },
      ])
    }
  })

  it("sends http-lb to every replica of the api, by Docker's DNS, on the api's port", () => {
    const compose = loadCompose(SCALED)
    const lb = compose.services['http-lb']!
    const [source, target] = lb.volumes![0]!.split(':')
    expect([source, target]).toEqual([
      './deploy/haproxy-http.cfg',
      '/usr/local/etc/haproxy/haproxy.cfg',
    ])
    const config = readRepoFile('deploy/haproxy-http.cfg')
    const binds = [...config.matchAll(/^\s*bind\s+:(\d+)/gm)].map((m) => Number(m[1]))
    expect(binds).toEqual(portMappings(lb.ports).map((p) => p.container))
    const template = /^\s*server-template\s+\S+\s+(\d+)\s+([^:\s]+):(\d+)\s*$/m.exec(config)
    expect(template, 'a server-template line').not.toBeNull()
    const [, slots, host, port] = template!
    expect(host).toBe('api')
    expect(Number(port)).toBe(api.HTTP_PORT)
    expect(Number(slots)).toBeGreaterThanOrEqual(compose.services.api!.deploy!.replicas!)
    // Resolved at run time, by Docker's embedded DNS, with no address needed at start.
    expect(config).toMatch(/^\s*default-server .*\bresolvers docker\b.*\binit-addr none\b/m)
    expect(config).toMatch(/^resolvers docker\n\s+nameserver \S+ 127\.0\.0\.11:53$/m)
    // The same probe as the image's HEALTHCHECK: liveness, which needs no token.
    const probe = finalStage('api').find((i) => i.keyword === 'HEALTHCHECK')!.args
    const path = /^\s*option httpchk GET (\S+)$/m.exec(config)?.[1]
    expect(path).toBe('/api/health')
    expect(probe).toContain(`${path}\``)
    // The live stream is a WebSocket: once upgraded, `timeout tunnel` governs it, and it
    // must outlast the api's keepalive (a frame at least every 5 s).
    const tunnel = /^\s*timeout tunnel (\d+)s$/m.exec(config)
    expect(Number(tunnel?.[1])).toBeGreaterThan(15)
  })

  it.each([
    ['deploy/haproxy.cfg', []],
    ['deploy/haproxy-http.cfg', ['-dW']], // no warning at all: nothing to resolve at start
  ])('%s is a configuration the real haproxy accepts', (file, flags) => {
    const out = execFileSync(HAPROXY, [...flags, '-c', '-f', join(ROOT, file)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    expect(out).toMatch(/Configuration file is valid/)
  })

  it('gives each api replica its own instance id, and behind http-lb the client its address', async () => {
    for (const [, vars] of LAYOUTS) {
      const env = deploy(vars).env('api')
      // Unset: each replica takes its container's host name (its id), so no two share the
      // leader lease's holder name or an MQTT command client id.
      expect(env.API_INSTANCE_ID).toBeUndefined()
    }
    expect(defaultInstanceId().startsWith(`${hostname()}-`)).toBe(true)
    expect(defaultInstanceId()).not.toBe(defaultInstanceId())

    /** The address the api takes for a request from `peer` forwarding `client`. */
    const clientOf = async (vars: Record<string, string>, peer: string, client: string) => {
      const server = Fastify(serverOptions(loadApiConfig(deploy(vars).env('api'))))
      server.get('/ip', (req) => req.ip)
      onTestFinished(() => server.close())
      const res = await server.inject({
        url: '/ip',
        remoteAddress: peer,
        headers: { 'x-forwarded-for': client },
      })
      return res.body
    }
    // http-lb, at an address Docker picks in a private range, forwards the client's.
    for (const peer of ['172.18.0.5', '192.168.16.3', '10.10.0.4']) {
      expect(await clientOf(SCALED, peer, '203.0.113.7'), peer).toBe('203.0.113.7')
    }
    // The single api publishes its own port: whoever connects is the client, whatever it says.
    expect(await clientOf(ONE_BROKER, '172.18.0.1', '203.0.113.7')).toBe('172.18.0.1')
  })

  it('has every variable it uses listed in .env.example, and no other', () => {
    const compose = ['COMPOSE_PROFILES', 'COMPOSE_FILE'] // docker compose's own
    const listed = Object.keys(envExample()).filter((v) => !compose.includes(v))
    expect(listed.sort()).toEqual([...composeVariables()].sort())
    // The settings of each layout are variables it uses too.
    for (const variable of Object.keys({ ...envExampleCluster(), ...envExampleScale() })) {
      expect(Object.keys(envExample())).toContain(variable)
    }
  })

  it.each<readonly [string, Record<string, string>]>([['no .env at all', {}], ...LAYOUTS])(
    'needs no .env: the secrets are generated once, and each read from one file (%s)',
    (_, vars) => {
      expect(readRepoFile('docker-compose.yml')).not.toMatch(/\$\{\w+:?\?/) // nothing required
      const { compose, host, env, secrets } = deploy(vars)
      const generated = secrets()
      expect(generated.token).toMatch(/^[0-9a-f]{64}$/)
      expect(generated.password).toMatch(/^[0-9a-f]{64}$/)
      expect(generated.password).not.toBe(generated.token)
      const done = (name: string) =>
        expect(compose.services[name]!.depends_on?.secrets?.condition, name).toBe(
          'service_completed_successfully',
        )

      // Every app reads the device-token secret from DATA_DIR, where `secrets` wrote it,
      // read-only: none of them can create another one (resolveTokenSecret would).
      const written = host.path(
        compose.services.secrets!,
        compose.services.secrets!.environment!.DEVICE_TOKEN_SECRET_FILE!,
      )
      const readers = APPS.flatMap((app) => servicesOf(compose, app))
      for (const [name, service] of readers) {
        done(name)
        expect(service.environment!.DEVICE_TOKEN_SECRET, name).toBeUndefined()
        const dataDir = host.path(service, service.environment!.DATA_DIR!)
        expect(dataDir?.mount.source, name).toBe(written!.mount.source)
        expect(dataDir?.mount.readOnly, `${name} mounts it read-only`).toBe(true)
        expect(join(dataDir!.host, 'device-token-secret'), name).toBe(written!.host)
        expect(resolveTokenSecret(undefined, dataDir!.host), name).toBe(generated.token)
      }

      // Postgres and the api read the password from the same file.
      done('postgres')
      const postgres = compose.services.postgres!
      const apiService = compose.services.api!
      const pgFile = host.path(postgres, postgres.environment!.POSTGRES_PASSWORD_FILE!)
      const apiFile = host.path(apiService, apiService.environment!.DATABASE_PASSWORD_FILE!)
      expect(pgFile?.mount.readOnly).toBe(true)
      expect(apiFile?.host).toBe(pgFile!.host)
      const url = new URL(loadApiConfig(env('api')).DATABASE_URL!)
      expect(decodeURIComponent(url.password)).toBe(generated.password)

      // Each volume is mounted only where it is read: no broker or simulator sees the
      // database's password.
      const mountedBy = (volume: string) =>
        Object.entries(compose.services)
          .filter(([, s]) => mounts(s).some((m) => m.named && m.source === volume))
          .map(([name]) => name)
          .sort()
      expect(mountedBy(written!.mount.source)).toEqual(
        ['secrets', ...readers.map(([name]) => name)].sort(),
      )
      expect(mountedBy(pgFile!.mount.source)).toEqual(['api', 'postgres', 'secrets'])
      for (const m of Object.values(compose.services)
        .flatMap(mounts)
        .filter((m) => m.named)) {
        expect(Object.keys(compose.volumes ?? {}), `volume ${m.source}`).toContain(m.source)
      }

      // The next `docker compose up` keeps them.
      host.run(compose.services.secrets!)
      expect(secrets()).toEqual(generated)
    },
  )

  it(".env's secrets override the generated ones, and stay when .env no longer sets them", () => {
    const dir = tempDir()
    const first = deploy(ONE_BROKER, dir).secrets()
    const { env, secrets } = deploy({ ...ONE_BROKER, ...USER_SECRETS }, dir)
    const own = {
      token: USER_SECRETS.DEVICE_TOKEN_SECRET,
      password: USER_SECRETS.POSTGRES_PASSWORD,
    }
    expect(first).not.toEqual(own)
    expect(secrets()).toEqual(own)
    for (const name of ['broker', 'api', 'sim'])
      expect(resolveTokenSecret(undefined, env(name).DATA_DIR!), name).toBe(own.token)
    // Any character: the api percent-encodes the password into its DATABASE_URL.
    const url = new URL(loadApiConfig(env('api')).DATABASE_URL!)
    expect(decodeURIComponent(url.password)).toBe(own.password)
    // Taken out of .env again: the same secrets, not new ones that the tokens already
    // signed and the database would refuse.
    expect(deploy(ONE_BROKER, dir).secrets()).toEqual(own)
  })

  it('refuses a DEVICE_TOKEN_SECRET shorter than 32 characters in .env, naming it', () => {
    const dir = tempDir()
    const init = loadCompose({ ...ONE_BROKER, DEVICE_TOKEN_SECRET: 'short' }).services.secrets!
    expect(() => hostFiles(dir).run(init)).toThrow(
      /DEVICE_TOKEN_SECRET \(\.env\): must be at least 32/,
    )
    // It fails before writing anything: the services that wait for it do not start.
    expect(existsSync(hostFiles(dir).env(init).DEVICE_TOKEN_SECRET_FILE!)).toBe(false)
  })
})

/**
 * The oldest Node major the images may run: an LTS line still maintained. Node 20 left
 * maintenance on 2026-04-30 (issue 17); 22 is maintained until 2027-04-30, 24 until
 * 2028-04-30. Raise it when a line ends (the Node.js release schedule).
 */
const NODE_IMAGE_MIN_MAJOR = 22

function finalStage(app: App) {
  return dockerfileStages(dockerfileOf(app)).at(-1)!
}

describe('the Dockerfiles', () => {
  it.each(APPS)(
    '%s: runs its bundle on node with production dependencies only, as a non-root user',
    (app) => {
      const stages = dockerfileStages(dockerfileOf(app))
      expect(stages.length).toBeGreaterThanOrEqual(2)
      const [build, run] = [stages[0]!, stages.at(-1)!]
      const all = (stage: typeof run, keyword: string) =>
        stage.filter((i) => i.keyword === keyword).map((i) => i.args)
      expect(all(build, 'RUN').some((r) => /\bnpm ci\b/.test(r))).toBe(true)
      expect(all(build, 'RUN').join('\n')).toMatch(
        new RegExp(`npm run build( --workspace \\S+)* --workspace apps/${app}\\b`),
      )

      const installs = all(run, 'RUN').filter((r) => /\bnpm (ci|install|prune)\b/.test(r))
      expect(installs.length).toBeGreaterThan(0)
      for (const install of installs) {
        expect(install).toContain('--omit=dev')
        expect(install).toContain(`--workspace apps/${app}`)
      }
      expect(run.map((i) => i.args).join('\n')).not.toMatch(/\btsx\b/)

      const users = all(run, 'USER')
      expect(users.length).toBeGreaterThan(0)
      expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/)

      // It starts what `npm run build` produces: an entry of the app's build script, in dist/.
      const start = execForm(all(run, 'ENTRYPOINT').at(-1) ?? all(run, 'CMD').at(-1)!)
      expect(start[0]).toBe('node')
      const script = start.find((w) => w.endsWith('.js'))!
      const manifest = JSON.parse(readRepoFile(`apps/${app}/package.json`)) as {
        scripts: Record<string, string>
      }
      const entries = [...manifest.scripts.build!.matchAll(/\bsrc\/(\S+)\.ts\b/g)].map((m) => m[1])
      expect(entries.map((e) => `apps/${app}/dist/${e}.js`)).toContain(script)
      expect(all(run, 'COPY')).toContain(`--from=build /src/apps/${app}/dist apps/${app}/dist`)

      const exposed = all(run, 'EXPOSE').flatMap((e) => e.split(/\s+/).map(Number))
      expect(exposed).toEqual(DEFAULT_PORTS[app])
    },
  )

  it('run on one maintained Node LTS line, the same image in every stage of every app', () => {
    const images = APPS.flatMap((app) =>
      dockerfileStages(dockerfileOf(app)).map((stage) => {
        const from = stage.find((i) => i.keyword === 'FROM')!.args.split(/\s+/)[0]!
        return { app, from }
      }),
    )
    expect(new Set(images.map((i) => i.from)), 'one image everywhere').toHaveLength(1)
    const [image] = images.map((i) => i.from)
    const match = /^node:(\d+)-[\w-]*slim$/.exec(image!)
    expect(match, `${image}: node:<major>-<debian>-slim`).not.toBeNull()
    const major = Number(match![1])
    // Even majors are the LTS lines; odd ones end six months after they start.
    expect(major % 2, `${image} is an LTS line`).toBe(0)
    expect(major, `${image} is still maintained`).toBeGreaterThanOrEqual(NODE_IMAGE_MIN_MAJOR)
    // The code runs on every Node the root package.json allows (CI runs its oldest).
    const engines = (JSON.parse(readRepoFile('package.json')) as { engines: { node: string } })
      .engines.node
    expect(major).toBeGreaterThanOrEqual(Number(/^>=\s*(\d+)/.exec(engines)![1]))
  })

  it.each([
    ['broker', 'BROKER_METRICS_PORT', broker.BROKER_METRICS_PORT, '/health'],
    ['api', 'HTTP_PORT', api.HTTP_PORT, '/api/health'],
  ] as const)(
    '%s: has a HEALTHCHECK on its HTTP endpoint at its default port',
    (app, variable, port, path) => {
      const check = finalStage(app).find((i) => i.keyword === 'HEALTHCHECK')?.args ?? ''
      expect(check).toContain(`process.env.${variable} || ${port}`)
      expect(check).toContain(`${path}\``)
    },
  )

  it('broker: runs node with the flags the broker is tuned for, as the npm scripts do', () => {
    const cmd = finalStage('broker').filter((i) => i.keyword === 'CMD')
    const start = execForm(cmd.at(-1)!.args)
    expect(start.slice(1, 1 + BROKER_NODE_FLAGS.length)).toEqual(BROKER_NODE_FLAGS)
    const scriptsOf = (file: string) =>
      (JSON.parse(readRepoFile(file)) as { scripts: Record<string, string> }).scripts
    const broker = scriptsOf('apps/broker/package.json')
    for (const script of [scriptsOf('package.json').broker, broker.start, broker.dev]) {
      expect(script).toContain(`${BROKER_NODE_FLAGS.join(' ')} `)
    }
  })

  it('api: carries the migrations and the built web map beside its bundle', () => {
    const stages = dockerfileStages(dockerfileOf('api'))
    expect(
      stages[0]!
        .filter((i) => i.keyword === 'RUN')
        .map((i) => i.args)
        .join('\n'),
    ).toMatch(/npm run build (--workspace \S+ )*--workspace apps\/web\b/)
    const copies = finalStage('api')
      .filter((i) => i.keyword === 'COPY')
      .map((i) => i.args)
    expect(copies).toContain('--from=build /src/apps/api/drizzle apps/api/drizzle')
    expect(copies).toContain('--from=build /src/apps/web/dist apps/web/dist')
  })

  it('build from a context without node_modules, dist or .env', () => {
    const ignored = readRepoFile('.dockerignore').split('\n')
    for (const entry of ['**/node_modules', '**/dist', '.env', 'data']) {
      expect(ignored).toContain(entry)
    }
  })
})
