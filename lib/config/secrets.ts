import { readClientCertificatePem, type ClientCertificate } from '../wechatpay/client-certificate';
import { WechatPayConfigError } from '../wechatpay/errors';
import { ConfigError } from './errors';

/**
 * Every secret the functions read from SSM (the API key, the client certificate, the merchant
 * tokens, the apps' AppSecrets, the session key) is read by `secureParameter`. A secret never
 * reaches a log, an error or an answer: errors name the parameter, never its value.
 */

/**
 * How long a container keeps a secret before reading it again: a changed value (a rotated merchant
 * token, a new session key) reaches every container within five minutes.
 */
export const SECRET_MAX_AGE_SECONDS = 300;

/**
 * A SecureString from SSM, decrypted, cached per container by Powertools Parameters for `maxAge`
 * seconds. `what` names it in errors (`the API key`); a failure to read it is a ConfigError with
 * the SDK's error as its `cause`, and an empty value is one too.
 */
export async function secureParameter(
  parameterName: string,
  what: string,
  { maxAge = SECRET_MAX_AGE_SECONDS }: { maxAge?: number } = {},
): Promise<string> {
  // Imported on first use: only deployed stages read SSM, and the SDK client is costly to load.
  const { getParameter } = await import('@aws-lambda-powertools/parameters/ssm');
  let value: string | undefined;
  try {
    value = await getParameter(parameterName, { decrypt: true, maxAge });
  } catch (cause) {
    throw new ConfigError(`could not read ${what} parameter ${parameterName}`, { cause });
  }
  if (!value) throw new ConfigError(`${what} parameter ${parameterName} is empty`);
  return value;
}

/** An API v2 key is 32 characters; `source` names where it came from, the key itself is never quoted. */
export function checkApiKey(apiKey: string, source: string): string {
  if (apiKey.length !== 32) {
    throw new ConfigError(
      `the API key from ${source} has ${apiKey.length} characters; a WeChat Pay API v2 key has 32 (is it the APIv3 key?)`,
    );
  }
  return apiKey;
}

/** The API key from its SSM parameter (WECHATPAY_API_KEY_PARAM). */
export async function readApiKey(parameterName: string): Promise<string> {
  return checkApiKey(await secureParameter(parameterName, 'the API key'), `parameter ${parameterName}`);
}

/** Where the client certificate comes from (AppConfig's fields of the same names). */
export interface ClientCertificateSettings {
  clientCertParam?: string;
  clientCertPem?: string;
  secapiCaPem?: string;
}

/**
 * The merchant's API client certificate and key (docs/go-live.md: A first deploy, step 2), read on the first refund only:
 * from the SSM SecureString named by WECHATPAY_CERT_PARAM, else from WECHATPAY_CLIENT_CERT_PEM (the
 * local stack). Checked before use: a key that is not the certificate's, or an expired certificate,
 * is a ConfigError naming the setting.
 */
export async function loadClientCertificate(config: ClientCertificateSettings): Promise<ClientCertificate> {
  let pem: string;
  let source: string;
  if (config.clientCertParam) {
    source = `parameter ${config.clientCertParam}`;
    pem = await secureParameter(config.clientCertParam, 'the client certificate');
  } else {
    source = 'WECHATPAY_CLIENT_CERT_PEM';
    if (!config.clientCertPem)
      throw new ConfigError('refunds need the merchant API client certificate: set WECHATPAY_CERT_PARAM (docs/go-live.md, step 2)');
    pem = config.clientCertPem;
  }
  try {
    const certificate = readClientCertificatePem(pem, source);
    return config.secapiCaPem ? { ...certificate, ca: config.secapiCaPem } : certificate;
  } catch (error) {
    if (error instanceof WechatPayConfigError) throw new ConfigError(error.message);
    throw error;
  }
}
