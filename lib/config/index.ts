/**
 * Configuration (docs/reference/configuration.md): how settings are read from the environment (`env.ts`), the
 * merchant's apps (`apps.ts`), the payment functions' settings (`settings.ts`) and every secret,
 * read from SSM through one `secureParameter` (`secrets.ts`).
 */
export { ConfigError } from './errors';
export { checkUrl, required, type Env } from './env';
export { APP_KINDS, readApps, type AppKind, type WechatApp } from './apps';
export { loadConfig, readSettings, type AppConfig } from './settings';
export { loadClientCertificate, secureParameter, SECRET_MAX_AGE_SECONDS } from './secrets';
