import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * `serverless package` for the tests that read what the framework writes (test/infra).
 *
 * Each packaging writes into a directory of its own (`--package`) and bundles in a folder of its
 * own, and runs alone: serverless-esbuild still passes every run's zips through the service's
 * `.serverless/`, so two packagings at once (vitest runs test files in parallel) could swap each
 * other's zips. A packaging that several test files read is done once per test run and shared
 * (`sharedPackage`); test/support/packaging-setup.ts gives the run its cache and removes it.
 */

const run = promisify(execFile);
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SERVERLESS = join(ROOT, 'node_modules/.bin/serverless');

/** Design §2 settings and AWS credentials: none may leak in from the shell running the tests. */
export const SCRUBBED = [
  'WECHATPAY_APPID',
  'WECHATPAY_MCHID',
  'WECHATPAY_API_KEY',
  'WECHATPAY_API_KEY_PARAM',
  'WECHATPAY_SIGN_TYPE',
  'WECHATPAY_BASE_URL',
  'WECHATPAY_NOTIFY_URL',
  'ORDERS_TABLE',
  'CATALOG_TABLE',
  'MERCHANT_API_TOKENS_PARAM',
  'MERCHANT_API_TOKEN',
  'DYNAMODB_ENDPOINT',
  'ORDER_EXPIRE_MINUTES',
  'WECHAT_APPS',
  'WECHAT_APP_SECRETS',
  'WECHAT_API_BASE_URL',
  'SESSION_KEY_PARAM',
  'SESSION_KEY',
  'CORS_ORIGINS',
  'EVENT_BUS_NAME',
  'EVENTBRIDGE_ENDPOINT',
  'WECHATPAY_CERT_PARAM',
  'WECHATPAY_CLIENT_CERT_PEM',
  'WECHATPAY_SECAPI_BASE_URL',
  'WECHATPAY_SECAPI_CA_PEM',
  'WECHATPAY_REFUND_NOTIFY_URL',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
];

export function cliEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SLS_TELEMETRY_DISABLED: '1', SLS_NOTIFICATIONS_MODE: 'off' };
  for (const name of SCRUBBED) delete env[name];
  return { ...env, ...overrides };
}

export async function serverless(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  try {
    const { stdout } = await run(SERVERLESS, args, { cwd: ROOT, env, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`serverless ${args.join(' ')} failed:\n${stdout}\n${stderr}`);
  }
}

export interface Resource {
  Type: string;
  Properties: Record<string, unknown>;
}
export type Template = { Resources: Record<string, Resource> } & Record<string, unknown>;

/** A stage as someone packages or deploys it: `--stage`, `--param "name=value"`s and the shell's variables. */
export interface PackageRequest {
  stage: string;
  params?: Record<string, string>;
  env?: Record<string, string>;
}

export interface Packaged {
  dir: string;
  /** The stack's template (cloudformation-template-update-stack.json). */
  template: Template;
  /** The template of the first deploy, which only creates the deployment bucket (…-create-stack.json). */
  createTemplate: Template;
  /** Everything the framework wrote as text (templates and state), to search for leaks. */
  text: string;
}

/** A value that must never reach a deployed template, even when set in the deploying shell. */
export const SHELL_API_KEY = 'shellApiKeyThatMustNotBeDeployed0';

/**
 * `dev` as docs/go-live.md deploys it (`npx serverless deploy`, no param), from a shell that happens to
 * hold an API key in WECHATPAY_API_KEY, which must not reach the template.
 */
export const DEV: PackageRequest = { stage: 'dev', env: { WECHATPAY_API_KEY: SHELL_API_KEY } };

/** prod as docs/go-live.md deploys it: `npx serverless deploy --stage prod --param "appId=wx..." --param "mchId=..."`. */
export const PROD: PackageRequest = { stage: 'prod', params: { appId: 'wx2421b1c4370ec43b', mchId: '1230000109' } };

/** prod's apps, as the deploying environment of PROD_FROM_ENVIRONMENT sets them: two that log payers in, one that does not. */
export const PROD_APPS = [
  { appId: 'wx0000000000000001', kind: 'officialaccount', secretParam: '/payments/prod/official-account-secret' },
  { appId: 'wx0000000000000002', kind: 'miniprogram', secretParam: '/payments/prod/mini-program-secret' },
  { appId: 'wx0000000000000003', kind: 'app' },
];

/** prod set through the deploying environment: its own parameter names, several apps. */
export const PROD_FROM_ENVIRONMENT: PackageRequest = {
  stage: 'prod',
  env: {
    WECHATPAY_APPID: 'wx0000000000000001',
    WECHATPAY_MCHID: '1900000001',
    WECHATPAY_NOTIFY_URL: 'https://pay.example.com/wechatpay/notify',
    WECHATPAY_API_KEY_PARAM: '/payments/prod/wechatpay-key',
    ORDER_EXPIRE_MINUTES: '15',
    WECHAT_APPS: JSON.stringify(PROD_APPS),
    SESSION_KEY_PARAM: '/payments/prod/session-key',
  },
};

const TEMPLATE = 'cloudformation-template-update-stack.json';
const CREATE_TEMPLATE = 'cloudformation-template-create-stack.json';
const STATE = 'serverless-state.json';

function readPackaged(dir: string): Packaged {
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');
  return {
    dir,
    template: JSON.parse(read(TEMPLATE)) as Template,
    createTemplate: JSON.parse(read(CREATE_TEMPLATE)) as Template,
    text: [TEMPLATE, STATE].map(read).join('\n'),
  };
}

let bundleFolders = 0;

async function packageInto(request: PackageRequest, dir: string): Promise<void> {
  // A bundling folder of its own: packaging deletes its folder, which must not be a running stack's.
  const bundleFolder = `.esbuild/test-package-${request.stage}-${process.pid}-${(bundleFolders += 1)}`;
  const params = Object.entries(request.params ?? {}).flatMap(([name, value]) => ['--param', `${name}=${value}`]);
  try {
    await serverless(['package', '--stage', request.stage, '--package', dir, ...params], {
      ...cliEnv(request.env),
      ESBUILD_WORK_FOLDER: bundleFolder,
    });
  } finally {
    rmSync(join(ROOT, bundleFolder), { recursive: true, force: true });
  }
}

const LOCK = join(ROOT, '.esbuild', 'packaging.lock');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether the lock was left by a process that is gone (a test run that was killed). */
function lockIsStale(): boolean {
  try {
    process.kill(Number(readFileSync(join(LOCK, 'pid'), 'utf8')), 0);
    return false;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return true;
    // No pid yet: its owner is between creating the lock and writing it, unless that was long ago.
    if (code === 'ENOENT') return existsSync(LOCK) && Date.now() - statSync(LOCK).mtimeMs > 60_000;
    return false;
  }
}

/** Runs `work` while no other process of this machine packages the service (see the top). */
async function alone<T>(work: () => Promise<T>): Promise<T> {
  mkdirSync(join(ROOT, '.esbuild'), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (lockIsStale()) rmSync(LOCK, { recursive: true, force: true });
      else await sleep(250);
    }
  }
  writeFileSync(join(LOCK, 'pid'), String(process.pid));
  try {
    return await work();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** Packages a stage into a new directory of its own; the caller removes `dir`. */
export async function packageStage(request: PackageRequest): Promise<Packaged> {
  const dir = mkdtempSync(join(tmpdir(), `wechatpay-${request.stage}-`));
  await alone(() => packageInto(request, dir));
  return readPackaged(dir);
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Where this test run keeps the packagings its files share (test/support/packaging-setup.ts). */
    packagingCache?: string;
  }
}

let processCache: string | undefined;

async function cacheDir(): Promise<string> {
  // Loaded here, not at the top: scripts (npm run iam:table) package stages outside vitest.
  const { inject } = await import('vitest');
  const provided = inject('packagingCache');
  if (provided) return provided;
  // Run without the global setup: share within this process only, and clean up on exit.
  if (!processCache) {
    const dir = mkdtempSync(join(tmpdir(), 'wechatpay-packages-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    processCache = dir;
  }
  return processCache;
}

/**
 * The stage packaged once for the whole test run, whichever test file asks first; the others read
 * the same directory. Read-only: it is removed when the run ends, not by the caller.
 */
export async function sharedPackage(request: PackageRequest): Promise<Packaged> {
  const key = createHash('sha256')
    .update(JSON.stringify([request.stage, request.params ?? {}, request.env ?? {}]))
    .digest('hex');
  const dir = join(await cacheDir(), `${request.stage}-${key.slice(0, 16)}`);
  const done = join(dir, '.complete');
  await alone(async () => {
    if (existsSync(done)) return;
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    await packageInto(request, dir);
    writeFileSync(done, '');
  });
  return readPackaged(dir);
}
