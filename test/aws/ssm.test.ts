import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getSecureParameter, signedGetParameter } from '../../lib/aws/ssm';

const bytes = (data: string | ArrayBuffer | ArrayBufferView): string | Buffer =>
  typeof data === 'string' ? data : ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);

/** The hash constructor SignatureV4 takes, over Node's crypto. */
class Sha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret ? createHmac('sha256', bytes(secret)) : createHash('sha256');
  }
  update(data: string | ArrayBuffer | ArrayBufferView) {
    this.hash.update(bytes(data));
  }
  async digest() {
    return new Uint8Array(this.hash.digest());
  }
}

const env = {
  AWS_REGION: 'ap-southeast-1',
  AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
  AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  AWS_SESSION_TOKEN: 'session-token-example',
};

describe('signedGetParameter', () => {
  it('signs exactly as the AWS SDK signer does', async () => {
    const now = new Date('2025-01-02T03:04:05Z');
    const ours = signedGetParameter('/wechatpay/prod/api-key', env, now);
    const url = new URL(ours.url);
    expect(url.host).toBe('ssm.ap-southeast-1.amazonaws.com');
    const unsigned: Record<string, string> = { ...ours.headers };
    delete unsigned.authorization;
    const signer = new SignatureV4({
      service: 'ssm',
      region: env.AWS_REGION,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN },
      sha256: Sha256,
      applyChecksum: false,
    });
    const signed = await signer.sign(
      { method: 'POST', protocol: 'https:', hostname: url.hostname, path: '/', headers: unsigned, body: ours.body },
      { signingDate: now },
    );
    expect(ours.headers.authorization).toBe(signed.headers.authorization);
  });

  it('says what is missing rather than sending an unsigned request', () => {
    expect(() => signedGetParameter('/p', { AWS_REGION: 'us-east-1' })).toThrow(/no AWS credentials/);
    expect(() => signedGetParameter('/p', { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' })).toThrow(/AWS_REGION/);
  });
});

describe('getSecureParameter against a local SSM', () => {
  const seen: Array<{ target?: string; body: string; auth?: string }> = [];
  let answers: Array<[number, unknown]> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk));
    req.on('end', () => {
      seen.push({ target: req.headers['x-amz-target'] as string, body, auth: req.headers.authorization });
      const [status, answer] = answers.shift() ?? [500, {}];
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(answer));
    });
  });
  let endpoint = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));

  it('asks for the decrypted value and answers it', async () => {
    answers = [[200, { Parameter: { Name: '/k', Type: 'SecureString', Value: 'v'.repeat(32) } }]];
    expect(await getSecureParameter('/k', { ...env, AWS_ENDPOINT_URL_SSM: endpoint })).toBe('v'.repeat(32));
    expect(seen.at(-1)).toMatchObject({ target: 'AmazonSSM.GetParameter', body: '{"Name":"/k","WithDecryption":true}' });
    expect(seen.at(-1)?.auth).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/ap-southeast-1\/ssm\/aws4_request/);
  });

  it('names SSM error codes, retries only what may pass', async () => {
    answers = [[400, { __type: 'ParameterNotFound', message: '' }]];
    const before = seen.length;
    await expect(getSecureParameter('/missing', { ...env, AWS_ENDPOINT_URL_SSM: endpoint })).rejects.toThrow(/ParameterNotFound/);
    expect(seen.length - before).toBe(1);
    answers = [[400, { __type: 'ThrottlingException', message: 'Rate exceeded' }], [200, { Parameter: { Value: 'x' } }]];
    expect(await getSecureParameter('/k', { ...env, AWS_ENDPOINT_URL_SSM: endpoint })).toBe('x');
  });
});
