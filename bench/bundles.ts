/** Builds each function as serverless.yml packages it, plus the floor, and reads what lands in each. */
import { build, type BuildOptions, type Metafile } from 'esbuild';
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
    'exclude', 'packager', 'packagerOptions', 'installExtraArgs', 'watch', 'config', 'concurrency', 'zipConcurrency',
    'outputWorkFolder', 'outputBuildFolder', 'outputFileExtension', 'nativeZip', 'keepOutputDirectory', 'packagePath',
    'disableIncremental', 'skipBuild', 'skipRebuild', 'skipBuildExcludeFns', 'stripEntryResolveExtensions', 'disposeContext',
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

export async function buildBundles(): Promise<Bundle[]> {
  mkdirSync(OUT, { recursive: true });
  const options = esbuildOptions();
  const entries: Array<[string, string]> = Object.entries(readServerless().functions).map(([name, fn]) => [
    name,
    join(ROOT, `${fn.handler.slice(0, fn.handler.lastIndexOf('.'))}.ts`),
  ]);
  entries.push(['floor', join(ROOT, 'bench/floor.ts')]);
  const bundles: Bundle[] = [];
  for (const [name, entry] of entries) {
    const file = join(OUT, `${name}.js`);
    const result = await build({ ...options, entryPoints: [entry], outfile: file, metafile: true, logLevel: 'error', absWorkingDir: ROOT });
    const code = readFileSync(file);
    bundles.push({ name, file, bytes: statSync(file).size, zipBytes: deflateRawSync(code, { level: 9 }).length, packages: packagesOf(result.metafile) });
  }
  return bundles;
}

const REQUIRE_PROBE = `const t=process.hrtime.bigint();require(process.argv[1]);process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`;

/** Milliseconds to require one bundle in a fresh node process. */
function requireOnce(file: string): number {
  return Number(execFileSync(process.execPath, ['-e', REQUIRE_PROBE, file], { encoding: 'utf8', env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' } }));
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Cold require times: `runs` fresh processes per bundle, interleaved so load on the machine hits all alike. */
export function coldRequire(bundles: Bundle[], runs: number): Record<string, number[]> {
  const times: Record<string, number[]> = Object.fromEntries(bundles.map((b) => [b.name, []]));
  for (const b of bundles) requireOnce(b.file); // warm the file cache
  for (let i = 0; i < runs; i += 1) for (const b of bundles) times[b.name]!.push(requireOnce(b.file));
  return times;
}
