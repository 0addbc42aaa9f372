/** Builds each function as serverless.yml packages it, plus the floor, and reads what lands in each. */
import { build, type BuildOptions, type Metafile, type Plugin } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { parse } from 'yaml';

export const ROOT = new URL('..', import.meta.url).pathname;
/** Outside the working tree, so that linters and the packaging never see the bench's bundles. */
export const OUT = join(tmpdir(), 'wechatpay-bench');

interface Serverless {
  custom?: { esbuild?: Record<string, unknown> };
  functions: Record<string, { handler: string }>;
}

function readServerless(): Serverless {
  // Only the plain parts are read; CloudFormation short forms elsewhere in the file are not used here.
  return parse(readFileSync(join(ROOT, 'serverless.yml'), 'utf8'), { customTags: [], logLevel: 'silent' }) as Serverless;
}

/** serverless-esbuild's options as esbuild takes them (its own keys, such as `exclude`, dropped). */
export function esbuildOptions(): BuildOptions {
  // serverless-esbuild's own settings (its README); everything else is handed to esbuild as it is.
  const pluginOnly = new Set([
    'exclude',
    'packager',
    'packagerOptions',
    'installExtraArgs',
    'watch',
    'config',
    'concurrency',
    'zipConcurrency',
    'outputWorkFolder',
    'outputBuildFolder',
    'outputFileExtension',
    'nativeZip',
    'keepOutputDirectory',
    'packagePath',
    'disableIncremental',
    'skipBuild',
    'skipRebuild',
    'skipBuildExcludeFns',
    'stripEntryResolveExtensions',
    'disposeContext',
  ]);
  const options = Object.fromEntries(Object.entries(readServerless().custom?.esbuild ?? {}).filter(([key]) => !pluginOnly.has(key)));
  return { bundle: true, platform: 'node', ...(options as BuildOptions) };
}

export interface Bundle {
  name: string;
  file: string;
  bytes: number;
  /** Deflated size, as the function's zip stores it. */
  zipBytes: number;
  /** Bytes in the bundle per npm package ('(product)' for our own code). */
  packages: Record<string, number>;
}

function packagesOf(metafile: Metafile): Record<string, number> {
  const out: Record<string, number> = {};
  for (const output of Object.values(metafile.outputs)) {
    for (const [path, input] of Object.entries(output.inputs)) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
      const name = match ? match[1]! : '(product)';
      out[name] = (out[name] ?? 0) + input.bytesInOutput;
    }
  }
  return out;
}

/** Stands in for any export of a dependency left out of a bundle: callable, constructible, every property itself. */
const STAND_IN =
  'const stand = new Proxy(function () {}, { get: (_, key) => (key === Symbol.toPrimitive ? () => "" : stand), apply: () => stand, construct: () => stand });';

/**
 * An esbuild plugin that replaces `packages` (and their subpaths) by modules exporting the same
 * names, each a stand-in: the bundle is the function without those dependencies, for measuring
 * what they cost its cold start. Such a bundle is only required, never run.
 */
function without(packages: readonly string[]): Plugin {
  return {
    name: 'without',
    setup(b) {
      for (const pkg of packages) {
        b.onResolve({ filter: new RegExp(`^${pkg.replace(/[/.]/g, '\\$&')}(/.*)?$`) }, (args) => ({
          path: args.path,
          namespace: 'without',
        }));
      }
      b.onLoad({ filter: /.*/, namespace: 'without' }, async (args) => {
        const names = Object.keys((await import(args.path)) as object).filter(
          (name) => name !== 'default' && /^[A-Za-z_$][\w$]*$/.test(name),
        );
        // `export { stand as enum }`: an export name may be a reserved word, a declared name may not.
        return {
          contents: `${STAND_IN}\nexport { ${names.map((name) => `stand as ${name}`).join(', ')} };\nexport default stand;`,
          loader: 'js',
        };
      });
    },
  };
}

async function buildOne(name: string, entry: string, leaveOut: readonly string[] = []): Promise<Bundle> {
  const file = join(OUT, `${name.replace(/\W+/g, '-')}.js`);
  const result = await build({
    ...esbuildOptions(),
    entryPoints: [entry],
    outfile: file,
    metafile: true,
    logLevel: 'error',
    absWorkingDir: ROOT,
    plugins: leaveOut.length > 0 ? [without(leaveOut)] : [],
  });
  const code = readFileSync(file);
  return {
    name,
    file,
    bytes: statSync(file).size,
    zipBytes: deflateRawSync(code, { level: 9 }).length,
    packages: packagesOf(result.metafile),
  };
}

function functionEntries(): Array<[string, string]> {
  return Object.entries(readServerless().functions).map(([name, fn]) => [
    name,
    join(ROOT, `${fn.handler.slice(0, fn.handler.lastIndexOf('.'))}.ts`),
  ]);
}

/** Every function of serverless.yml, built as it packages them, and the floor. */
export async function buildBundles(): Promise<Bundle[]> {
  mkdirSync(OUT, { recursive: true });
  const bundles: Bundle[] = [];
  for (const [name, entry] of functionEntries()) bundles.push(await buildOne(name, entry));
  bundles.push(await buildOne('floor', join(ROOT, 'bench/floor.ts')));
  return bundles;
}

/** A function rebuilt without some of its dependencies (see `without`). */
export interface Variant extends Bundle {
  of: string;
  leftOut: string;
}

/**
 * For each function, a bundle without each of `groups` that it contains (a group is one or more
 * packages left out together), to measure what each costs its cold require.
 */
export async function buildVariants(bundles: Bundle[], groups: Record<string, readonly string[]>): Promise<Variant[]> {
  const variants: Variant[] = [];
  for (const [name, entry] of functionEntries()) {
    const bundle = bundles.find((b) => b.name === name)!;
    for (const [label, packages] of Object.entries(groups)) {
      if (!packages.some((pkg) => bundle.packages[pkg])) continue;
      variants.push({ ...(await buildOne(`${name} without ${label}`, entry, packages)), of: name, leftOut: label });
    }
  }
  return variants;
}

/** Wall time and CPU time (every thread of the process: compiling, collecting) of one require, in ms. */
const REQUIRE_PROBE = `const c=process.cpuUsage();const t=process.hrtime.bigint();require(process.argv[1]);const w=Number(process.hrtime.bigint()-t)/1e6;const u=process.cpuUsage(c);process.stdout.write(JSON.stringify([w,(u.user+u.system)/1e3]))`;

/** One bundle required in a fresh node process. */
function requireOnce(file: string): { wall: number; cpu: number } {
  const [wall, cpu] = JSON.parse(
    execFileSync(process.execPath, ['-e', REQUIRE_PROBE, file], {
      encoding: 'utf8',
      env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' },
    }),
  ) as [number, number];
  return { wall, cpu };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface ColdRequire {
  /** Milliseconds of each fresh require, by bundle (the floor's from every pair). */
  ms: Record<string, number[]>;
  /** Each bundle's require over the floor's require just beside it, one per round. */
  xFloor: Record<string, number[]>;
  /** The same ratio in CPU time, which other processes on the machine disturb less than wall time. */
  xFloorCpu: Record<string, number[]>;
}

/**
 * Cold require times, in rounds: each round requires the floor and each bundle alternately, in a
 * fresh process each (floor first in even rounds, the bundle first in odd ones), and takes the ratio
 * of each pair, so whatever else the machine is doing hits both sides of a ratio alike.
 */
export function coldRequire(floor: Bundle, bundles: Bundle[], rounds: number): ColdRequire {
  const ms: Record<string, number[]> = Object.fromEntries([floor, ...bundles].map((b) => [b.name, []]));
  const xFloor: Record<string, number[]> = Object.fromEntries(bundles.map((b) => [b.name, []]));
  const xFloorCpu: Record<string, number[]> = Object.fromEntries(bundles.map((b) => [b.name, []]));
  for (const b of [floor, ...bundles]) requireOnce(b.file); // the file cache
  for (let r = 0; r < rounds; r += 1) {
    for (const b of bundles) {
      const [first, second] = r % 2 === 0 ? [floor, b] : [b, floor];
      const a = requireOnce(first.file);
      const c = requireOnce(second.file);
      const [atFloor, atBundle] = first === floor ? [a, c] : [c, a];
      ms.floor!.push(atFloor.wall);
      ms[b.name]!.push(atBundle.wall);
      xFloor[b.name]!.push(atBundle.wall / atFloor.wall);
      xFloorCpu[b.name]!.push(atBundle.cpu / atFloor.cpu);
    }
  }
  return { ms, xFloor, xFloorCpu };
}
