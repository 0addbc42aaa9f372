import { ConfigError } from './errors';

/** How every setting is read from the environment, and checked. */

export type Env = Record<string, string | undefined>;

/** Hosts that only this machine can reach: the local stack's, where plain http is harmless. */
export const LOOPBACK_HOST = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])$/;

/** A setting that must be set: its value, trimmed. */
export function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new ConfigError(`${name} is not set`);
  return value;
}

/** An absolute http(s) URL, without its trailing slashes. */
export function checkUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} is not an absolute URL: "${value}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(`${name} must be an http(s) URL, got ${url.protocol}`);
  }
  return value.replace(/\/+$/, '');
}
