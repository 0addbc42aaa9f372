import { createHash, createHmac } from 'node:crypto';

/**
 * Reads one SecureString from SSM Parameter Store (GetParameter, decrypted) with a SigV4-signed
 * request of its own. The SDK's SSM client would cost every function about 180 KB of bundle and
 * several milliseconds of every cold start for this one call, made once per container. Credentials
 * and region are the ones Lambda puts in the environment.
 */

type Env = Record<string, string | undefined>;

const sha256 = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

export interface SignedRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** The signed GetParameter request (exported for its test against the SDK's own signer). */
export function signedGetParameter(name: string, env: Env, now: Date = new Date()): SignedRequest {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!region) throw new Error('AWS_REGION is not set');
  if (!accessKeyId || !secretAccessKey) throw new Error('no AWS credentials in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)');
  const url = new URL(
    env.AWS_ENDPOINT_URL_SSM ?? env.AWS_ENDPOINT_URL ?? `https://ssm.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`,
  );
  const body = JSON.stringify({ Name: name, WithDecryption: true });
  const amzDate = now.toISOString().replace(/[-:]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    'content-type': 'application/x-amz-json-1.1',
    host: url.host,
    'x-amz-date': amzDate,
    ...(env.AWS_SESSION_TOKEN ? { 'x-amz-security-token': env.AWS_SESSION_TOKEN } : {}),
    'x-amz-target': 'AmazonSSM.GetParameter',
  };
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const canonical = ['POST', url.pathname || '/', '', ...names.map((h) => `${h}:${headers[h]}`), '', signedHeaders, sha256(body)].join('\n');
  const scope = `${day}/${region}/ssm/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, day), region), 'ssm'), 'aws4_request');
  const signature = createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return { url: url.toString(), headers, body };
}

const ATTEMPTS = 3;
const TIMEOUT_MS = 3_000;

/** The decrypted value; throws an Error naming SSM's error code (e.g. ParameterNotFound) or the network failure. */
export async function getSecureParameter(name: string, env: Env = process.env): Promise<string | undefined> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt += 1) {
    const request = signedGetParameter(name, env);
    let response: Response;
    try {
      response = await fetch(request.url, { method: 'POST', headers: request.headers, body: request.body, signal: AbortSignal.timeout(TIMEOUT_MS) });
    } catch (error) {
      lastError = error;
      continue;
    }
    const text = await response.text();
    if (response.ok) return (JSON.parse(text) as { Parameter?: { Value?: string } }).Parameter?.Value;
    let code = `HTTP ${response.status}`;
    try {
      const error = JSON.parse(text) as { __type?: string; message?: string; Message?: string };
      code = `${error.__type?.split('#').pop() ?? code}: ${error.message ?? error.Message ?? ''}`.trim();
    } catch {
      // Not JSON: the status says enough.
    }
    lastError = new Error(`SSM GetParameter failed: ${code}`);
    // Throttling and server faults may pass; anything else (not found, access denied) will not.
    if (response.status < 500 && !/Throttl/i.test(code)) break;
    await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
  }
  throw lastError;
}
