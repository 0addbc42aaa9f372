/**
 * The merchant's API client certificate (`apiclient_cert`), which WeChat Pay requires on `/secapi/`
 * endpoints (mutual TLS). It is held as one PEM with the certificate and its private key, as
 * `wxpay cert` writes it from WeChat Pay's `.p12`; this reads and checks that PEM. Nothing here logs
 * or repeats the key.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { WechatPayConfigError } from './errors';

/** What a TLS client presents: the certificate (chain) and its private key, PEM; `ca` trusts a server (local stack only). */
export interface ClientCertificate {
  cert: string;
  key: string;
  /** Extra trust anchor for the server, PEM: only for the local stack's emulator. */
  ca?: string;
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const PRIVATE_KEY = /-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END \1?PRIVATE KEY-----/g;

/**
 * Reads a PEM holding the certificate then its key (in either order); refuses, naming `source`, one
 * without exactly one private key, without a certificate, with an encrypted key, with a key that is
 * not the certificate's, or with a certificate that has expired or is not yet valid.
 */
export function readClientCertificatePem(pem: string, source: string, now: Date = new Date()): ClientCertificate {
  const certs = pem.match(CERTIFICATE) ?? [];
  const keys = pem.match(PRIVATE_KEY) ?? [];
  if (certs.length === 0) throw new WechatPayConfigError(`${source} holds no certificate (expected the PEM that "wxpay cert" writes)`);
  if (keys.length !== 1) throw new WechatPayConfigError(`${source} must hold exactly one private key, found ${keys.length}`);
  const key = keys[0] as string;
  if (key.includes('ENCRYPTED'))
    throw new WechatPayConfigError(`${source} holds an encrypted private key; store it unencrypted in a SecureString`);
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certs[0] as string);
  } catch {
    throw new WechatPayConfigError(`${source}: the certificate cannot be read`);
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(key));
  } catch {
    throw new WechatPayConfigError(`${source}: the private key cannot be read`);
  }
  if (!matches) throw new WechatPayConfigError(`${source}: the private key does not belong to the certificate`);
  if (Date.parse(certificate.validTo) < now.getTime()) {
    throw new WechatPayConfigError(
      `${source}: the certificate expired on ${certificate.validTo}; download a new one from the merchant platform`,
    );
  }
  if (Date.parse(certificate.validFrom) > now.getTime())
    throw new WechatPayConfigError(`${source}: the certificate is not valid before ${certificate.validFrom}`);
  return { cert: certs.join('\n'), key };
}
