import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConfigError, type WechatApp } from '../config';
import { createPlatformClient, type PlatformClient } from '../wechat/platform-client';
import { createSessionTokens, type SessionTokens } from './session-token';
import { identitySecrets, readIdentitySettings, readPageOrigins, type IdentitySecrets, type PageOrigins } from './settings';
import { TokenCache } from './token-cache';
import { TokenStore } from './token-store';

/** What payers' identity needs; built once per container, replaced in tests. */
export interface IdentityContext {
  apps: readonly WechatApp[];
  platform: PlatformClient;
  secrets: IdentitySecrets;
  /** Session tokens with the current session key (read from SSM, cached; a changed key takes over). */
  sessions(): Promise<SessionTokens>;
  /** The access_token / jsapi_ticket cache shared through DynamoDB (needs ORDERS_TABLE). */
  tokens(): TokenCache;
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

export function createIdentityContext(env: Env, deps: { documentClient(endpoint?: string): DynamoDBDocumentClient }): IdentityContext {
  const { apps, wechatApiBaseUrl } = readIdentitySettings(env);
  const secrets = identitySecrets(env, apps);
  const platform = createPlatformClient({ baseUrl: wechatApiBaseUrl, timeoutMs: PLATFORM_TIMEOUT_MS });
  let sessions: { key: string; tokens: SessionTokens } | undefined;
  let tokens: TokenCache | undefined;
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
      if (!tokens) {
        const table = env.ORDERS_TABLE?.trim();
        if (!table) throw new ConfigError('ORDERS_TABLE is not set (the access_token and jsapi_ticket cache lives there)');
        const store = new TokenStore(deps.documentClient(env.DYNAMODB_ENDPOINT?.trim() || undefined), table);
        tokens = new TokenCache({ store, platform, secretFor: (appId) => secrets.appSecret(appId), waitMs: TOKEN_WAIT_MS });
      }
      return tokens;
    },
    pageOrigins() {
      origins ??= readPageOrigins(env);
      return origins;
    },
    now: () => Date.now(),
  };
}
