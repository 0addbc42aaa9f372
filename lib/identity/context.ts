import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConfigError, type WechatApp } from '../config';
import { createPlatformClient, type PlatformClient } from '../wechat/platform-client';
import { createSessionTokens, type SessionTokens } from './session-token';
import { identitySecrets, readIdentitySettings, readPageOrigins, type IdentitySecrets, type PageOrigins } from './settings';
import type { TokenCache } from './token-cache';

/** What payers' identity needs; built once per container, replaced in tests. */
export interface IdentityContext {
  apps: readonly WechatApp[];
  platform: PlatformClient;
  secrets: IdentitySecrets;
  /** Session tokens with the current session key (read from SSM, cached; a changed key takes over). */
  sessions(): Promise<SessionTokens>;
  /** The access_token / jsapi_ticket cache shared through DynamoDB (needs ORDERS_TABLE). */
  tokens(): Promise<TokenCache>;
  /** The origins whose pages may have a JS-SDK config (CORS_ORIGINS). */
  pageOrigins(): PageOrigins;
  /** Epoch milliseconds. */
  now(): number;
}

type Env = Record<string, string | undefined>;

/**
 * Under the functions' 15 s timeout: a platform call gets 4 s, and a container waits at most 8 s for
 * another's refresh of a token (a refresh is two calls, or three when WeChat refuses the token).
 */
const PLATFORM_TIMEOUT_MS = 4_000;
const TOKEN_WAIT_MS = 8_000;

/**
 * `documentClient` makes the DynamoDB client of the token cache; it is asked for (and may load the
 * SDK) only when the cache is first used, so that logins never load DynamoDB.
 */
export function createIdentityContext(
  env: Env,
  deps: { documentClient(endpoint?: string): DynamoDBDocumentClient | Promise<DynamoDBDocumentClient> },
): IdentityContext {
  const { apps, wechatApiBaseUrl } = readIdentitySettings(env);
  const secrets = identitySecrets(env, apps);
  const platform = createPlatformClient({ baseUrl: wechatApiBaseUrl, timeoutMs: PLATFORM_TIMEOUT_MS });
  let sessions: { key: string; tokens: SessionTokens } | undefined;
  let tokens: Promise<TokenCache> | undefined;
  let origins: PageOrigins | undefined;
  return {
    apps,
    platform,
    secrets,
    async sessions() {
      const key = await secrets.sessionKey();
      if (sessions?.key !== key) sessions = { key, tokens: createSessionTokens({ key }) };
      return sessions.tokens;
    },
    tokens() {
      tokens ??= (async () => {
        const table = env.ORDERS_TABLE?.trim();
        if (!table) throw new ConfigError('ORDERS_TABLE is not set (the access_token and jsapi_ticket cache lives there)');
        // Loaded here: logins never load the cache, its store or DynamoDB.
        const [{ TokenStore }, { TokenCache }] = await Promise.all([import('./token-store'), import('./token-cache')]);
        const store = new TokenStore(await deps.documentClient(env.DYNAMODB_ENDPOINT?.trim() || undefined), table);
        return new TokenCache({ store, platform, secretFor: (appId) => secrets.appSecret(appId), waitMs: TOKEN_WAIT_MS });
      })();
      tokens.catch(() => {
        tokens = undefined;
      });
      return tokens;
    },
    pageOrigins() {
      origins ??= readPageOrigins(env);
      return origins;
    },
    now: () => Date.now(),
  };
}
