// `npm run build` of a Node app (apps/broker, apps/api, apps/drone-sim): bundles each
// entry in src/ into dist/<entry>.js for plain `node`, as the containers run them
// (production dependencies only, so no tsx). Run from the app's folder:
//   tsx ../../scripts/bundle.ts src/main.ts [src/other.ts ...]
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { build } from 'esbuild'
import type { Plugin } from 'esbuild'

const WORKSPACE_SCOPE = '@skyline/'
const ROOT = resolve(import.meta.dirname, '..')

interface Manifest {
  name: string
  dependencies?: Record<string, string>
}

const readManifest = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest

/** npm packages a production install of `appDir` provides: its dependencies and those of the workspace packages it depends on. */
function productionPackages(appDir: string): Set<string> {
  const workspaces = new Map<string, string>()
  for (const parent of ['apps', 'packages']) {
    for (const dir of workspaceDirs(join(ROOT, parent))) workspaces.set(readManifest(dir).name, dir)
  }
  const provided = new Set<string>()
  const visit = (dir: string) => {
    for (const dep of Object.keys(readManifest(dir).dependencies ?? {})) {
      if (provided.has(dep)) continue
      provided.add(dep)
      const workspace = workspaces.get(dep)
      if (workspace !== undefined) visit(workspace)
    }
  }
  visit(appDir)
  return provided
}

/** The workspace folders under `parent` (those with a package.json). */
function workspaceDirs(parent: string): string[] {
  return readdirSync(parent)
    .map((name) => join(parent, name))
    .filter((dir) => existsSync(join(dir, 'package.json')))
}

/** The package name of a bare import: `@scope/name/sub` → `@scope/name`, `name/sub` → `name`. */
const packageName = (specifier: string) =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/')

/**
 * npm packages stay external (installed by `npm ci --omit=dev` beside the bundle);
 * the workspace packages, which export TypeScript, are bundled. An import of a
 * package that a production install would not provide fails the build here rather
 * than the container at run time.
 */
function externals(provided: Set<string>): Plugin {
  const builtins = new Set(builtinModules)
  return {
    name: 'externals',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.path.startsWith(WORKSPACE_SCOPE)) return undefined
        const name = packageName(args.path)
        if (args.path.startsWith('node:') || builtins.has(name)) return { external: true }
        if (!provided.has(name)) {
          return {
            errors: [
              {
                text: `${name} is imported by ${relative(ROOT, args.importer)} but is not a production dependency of this app`,
              },
            ],
          }
        }
        return { external: true }
      })
    },
  }
}

/**
 * Inside a bundle, `import.meta.url` is the bundle's URL, not the source file's. Files
 * that find their assets relative to themselves (the api's drizzle migrations,
 * `new URL('../../drizzle', import.meta.url)` from src/db/) would then look in the
 * wrong folder. Each source file's `import.meta.url` is rewritten to the URL its
 * source file has relative to the bundle, so those paths keep working wherever the
 * bundle sits, and without the sources present (as in a container).
 */
function sourceImportMetaUrl(outdir: string): Plugin {
  return {
    name: 'source-import-meta-url',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, (args) => {
        if (args.path.split(sep).includes('node_modules')) return undefined
        const source = readFileSync(args.path, 'utf8')
        if (!source.includes('import.meta.url')) return undefined
        const fromBundle = relative(outdir, args.path).split(sep).join('/')
        const url = `new URL(${JSON.stringify(fromBundle)}, import.meta.url).href`
        return { contents: source.replaceAll('import.meta.url', url), loader: 'ts' }
      })
    },
  }
}

async function main(): Promise<void> {
  const entries = process.argv.slice(2)
  if (entries.length === 0) throw new Error('usage: tsx ../../scripts/bundle.ts src/main.ts ...')
  const appDir = process.cwd()
  const outdir = join(appDir, 'dist')
  rmSync(outdir, { recursive: true, force: true })
  const result = await build({
    entryPoints: entries.map((e) => resolve(appDir, e)),
    outdir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    // A dynamic import stays one: the module it loads, and the npm packages that module
    // imports, load when it runs, not with the entry (apps/broker/src/main.ts needs that).
    splitting: true,
    target: 'node20',
    sourcemap: true,
    logLevel: 'warning',
    metafile: true,
    plugins: [externals(productionPackages(appDir)), sourceImportMetaUrl(outdir)],
  })
  const outputs = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'))
  console.log(`bundled ${outputs.map((f) => relative(dirname(outdir), f)).join(', ')}`)
}

main().catch((err: unknown) => {
  // esbuild has already printed its errors with their locations.
  if (!(err instanceof Error && 'errors' in err)) console.error(err)
  process.exit(1)
})
