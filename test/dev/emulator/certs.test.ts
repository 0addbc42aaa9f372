import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localCertificates, makeLocalCertificates, type LocalCertificates } from '../../../dev/emulator/certs';
import { TEST_MERCHANT } from '../../../dev/emulator/test-merchant';

let certs: LocalCertificates;
let strangers: LocalCertificates;
let server: Server;
let port: number;
let served = 0;

beforeAll(async () => {
  certs = localCertificates();
  // Another CA, as anyone could make: its certificates must open nothing.
  strangers = makeLocalCertificates();
  server = createServer(
    { cert: certs.serverCertPem, key: certs.serverKeyPem, ca: certs.caPem, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      served += 1;
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.end(JSON.stringify({ cn: peer.subject?.CN }));
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

interface Client {
  host?: string;
  ca?: string;
  cert?: string;
  key?: string;
}

function get({ host = '127.0.0.1', ...tls }: Client): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/secapi/pay/refund', method: 'GET', agent: false, ...tls }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('local certificates', () => {
  it('are made once per process', () => {
    expect(localCertificates()).toBe(certs);
  });

  it('hold what they say: a CA, a server certificate for 127.0.0.1 and localhost, a client certificate and key', () => {
    const ca = new X509Certificate(certs.caPem);
    const serverCert = new X509Certificate(certs.serverCertPem);
    const clientCert = new X509Certificate(certs.clientPem);
    expect(ca.ca).toBe(true);
    expect(serverCert.ca).toBe(false);
    expect(serverCert.checkIssued(ca) && serverCert.verify(ca.publicKey)).toBe(true);
    expect(clientCert.checkIssued(ca) && clientCert.verify(ca.publicKey)).toBe(true);
    expect(serverCert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(serverCert.checkHost('localhost')).toBe('localhost');
    expect(clientCert.subject).toContain(`CN=${TEST_MERCHANT.mchId}`);
    // clientPem is the certificate then its own private key.
    const clientKey = createPrivateKey(certs.clientPem);
    expect(createPublicKey(clientKey).export({ type: 'spki', format: 'der' })).toEqual(
      clientCert.publicKey.export({ type: 'spki', format: 'der' }),
    );
    expect(clientKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(new X509Certificate(strangers.clientPem).checkIssued(ca)).toBe(false);
  });

  it('a server requiring a client certificate from the local CA accepts the merchant, by 127.0.0.1 and by localhost', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const before = served;
      const answer = await get({ host, ca: certs.caPem, cert: certs.clientPem, key: certs.clientPem });
      expect(answer).toEqual({ status: 200, body: JSON.stringify({ cn: TEST_MERCHANT.mchId }) });
      expect(served).toBe(before + 1);
    }
  });

  it('refuses a client without a certificate', async () => {
    const before = served;
    await expect(get({ ca: certs.caPem })).rejects.toThrow(/certificate required/i);
    expect(served).toBe(before);
  });

  it('refuses a client whose certificate another CA signed', async () => {
    const before = served;
    await expect(get({ ca: certs.caPem, cert: strangers.clientPem, key: strangers.clientPem })).rejects.toThrow(
      /unknown ca|ECONNRESET|socket hang up/i,
    );
    expect(served).toBe(before);
  });

  it('is itself refused by a client that does not trust the local CA', async () => {
    await expect(get({ cert: certs.clientPem, key: certs.clientPem })).rejects.toThrow(
      /self[- ]signed|unable to verify|unable to get local issuer/i,
    );
    await expect(get({ ca: strangers.caPem, cert: certs.clientPem, key: certs.clientPem })).rejects.toThrow(
      /unable to verify|unable to get local issuer|self[- ]signed/i,
    );
  });
});
