/**
 * The certificates of the emulator's mutual-TLS port, made for the local stack, the emulator run on
 * its own and the tests: a local CA, a server certificate for 127.0.0.1 and localhost, and a
 * merchant client certificate, both signed by the CA. The emulator serves `/secapi/` over TLS and
 * requires a client certificate signed by this CA, as WeChat Pay requires the merchant's
 * `apiclient_cert`; the API presents `clientPem`, as it presents the real one once deployed.
 *
 * Keys come from Node's crypto (RSA key generation in pure JS takes seconds); node-forge only builds
 * and signs the certificates, which Node cannot do. Nothing here is secret or leaves the machine.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { TEST_MERCHANT } from './test-merchant';

export interface LocalCertificates {
  /** The local CA's certificate: the trust anchor for both sides. */
  caPem: string;
  /** The emulator's TLS server certificate (127.0.0.1, ::1, localhost) and its key. */
  serverCertPem: string;
  serverKeyPem: string;
  /** The merchant's client certificate then its private key, one PEM (as `wxpay cert` writes it). */
  clientPem: string;
}

export interface LocalCertificateOptions {
  /** The merchant id the client certificate names (its subject CN). */
  mchId?: string;
  /** Days the certificates are valid for. */
  days?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function rsaKeyPair(): { privateKeyPem: string; publicKey: forge.pki.PublicKey } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKey: forge.pki.publicKeyFromPem(publicKey) };
}

/** A positive serial number of 128 random bits. */
/** forge writes PEM with CRLF line ends; Node's own PEM has LF. */
function toPem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}

function serialNumber(): string {
  return `01${randomBytes(16).toString('hex')}`;
}

interface IssueOptions {
  subject: forge.pki.CertificateField[];
  publicKey: forge.pki.PublicKey;
  issuer?: forge.pki.Certificate;
  issuerKey: forge.pki.rsa.PrivateKey;
  extensions: object[];
  days: number;
}

function issue({ subject, publicKey, issuer, issuerKey, extensions, days }: IssueOptions): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serialNumber();
  const now = Date.now();
  // An hour back, for clocks that disagree a little.
  cert.validity.notBefore = new Date(now - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(now + days * DAY_MS);
  cert.setSubject(subject);
  cert.setIssuer(issuer ? issuer.subject.attributes : subject);
  const authority = issuer ?? cert;
  cert.setExtensions([
    ...extensions,
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: authority.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(issuerKey, forge.md.sha256.create());
  return cert;
}

/** Makes a new CA and the certificates it signs (about a second: three RSA 2048 keys). */
export function makeLocalCertificates({ mchId = TEST_MERCHANT.mchId, days = 365 }: LocalCertificateOptions = {}): LocalCertificates {
  const caKeys = rsaKeyPair();
  const caKey = forge.pki.privateKeyFromPem(caKeys.privateKeyPem);
  const ca = issue({
    subject: [
      { name: 'commonName', value: 'WeChat Pay local CA' },
      { name: 'organizationName', value: 'Local stack (not WeChat Pay)' },
    ],
    publicKey: caKeys.publicKey,
    issuerKey: caKey,
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
    days,
  });

  const serverKeys = rsaKeyPair();
  const server = issue({
    subject: [{ name: 'commonName', value: 'localhost' }],
    publicKey: serverKeys.publicKey,
    issuer: ca,
    issuerKey: caKey,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
    days,
  });

  const clientKeys = rsaKeyPair();
  const client = issue({
    subject: [
      { name: 'commonName', value: mchId },
      { name: 'organizationName', value: 'Local merchant (not WeChat Pay)' },
    ],
    publicKey: clientKeys.publicKey,
    issuer: ca,
    issuerKey: caKey,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
    ],
    days,
  });

  return {
    caPem: toPem(ca),
    serverCertPem: toPem(server),
    serverKeyPem: serverKeys.privateKeyPem,
    clientPem: toPem(client) + clientKeys.privateKeyPem,
  };
}

const made = new Map<string, LocalCertificates>();

/** The local stack's certificates, made once per process (per merchant id). */
export function localCertificates(mchId: string = TEST_MERCHANT.mchId): LocalCertificates {
  let certificates = made.get(mchId);
  if (!certificates) {
    certificates = makeLocalCertificates({ mchId });
    made.set(mchId, certificates);
  }
  return certificates;
}
