// A throwaway PKI for one test control plane, made with the openssl CLI
// (node:crypto makes keys but cannot issue X.509 certificates). Everything is
// valid for two days and lives in the control plane's temp directory.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Paths of a PEM certificate and its private key. */
export interface CertPair {
  readonly cert: string;
  readonly key: string;
}

export interface ClusterPki {
  readonly ca: CertPair;
  /** Serving certificate of kube-apiserver (127.0.0.1, localhost, kubernetes.default...). */
  readonly apiserver: CertPair;
  /** Client certificates, by role. */
  readonly admin: CertPair;
  readonly controllerManager: CertPair;
  readonly scheduler: CertPair;
  /** Service-account token signing key (private) and verification key (public). */
  readonly serviceAccountKey: string;
  readonly serviceAccountPub: string;
}

const validDays = '2';

async function openssl(args: readonly string[]): Promise<void> {
  await run('openssl', args, { timeout: 30_000 });
}

/** P-256 keys: as good as RSA here and generated in milliseconds. */
async function newKey(path: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
}

async function issue(
  dir: string,
  name: string,
  subject: string,
  extensions: string,
  ca: CertPair,
): Promise<CertPair> {
  const pair = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  await newKey(pair.key);
  await openssl(['req', '-new', '-key', pair.key, '-subj', subject, '-out', csr]);
  await writeFile(ext, extensions);
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    // A random serial instead of -CAcreateserial: certificates are issued in
    // parallel and would race on the shared serial file.
    '-set_serial',
    `0x${randomBytes(16).toString('hex')}`,
    '-days',
    validDays,
    '-sha256',
    '-extfile',
    ext,
    '-out',
    pair.cert,
  ]);
  return pair;
}

function clientExtensions(): string {
  return 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';
}

export async function createClusterPki(dir: string, serviceIp: string): Promise<ClusterPki> {
  const ca = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  await newKey(ca.key);
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    ca.key,
    '-subj',
    '/CN=mtkube-test-ca',
    '-days',
    validDays,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    '-out',
    ca.cert,
  ]);

  // In-cluster names are listed so clients that use the service DNS name (for
  // example a pod's kubeconfig) would also verify; only 127.0.0.1 is dialled.
  const sans = [
    'IP:127.0.0.1',
    `IP:${serviceIp}`,
    'DNS:localhost',
    'DNS:kubernetes',
    'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc',
    'DNS:kubernetes.default.svc.cluster.local',
  ].join(',');
  const serving = `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${sans}\n`;

  const [apiserver, admin, controllerManager, scheduler] = await Promise.all([
    issue(dir, 'apiserver', '/CN=kube-apiserver', serving, ca),
    // system:masters is bound to cluster-admin by the default RBAC policy.
    issue(dir, 'admin', '/O=system:masters/CN=mtkube-admin', clientExtensions(), ca),
    issue(dir, 'controller-manager', '/CN=system:kube-controller-manager', clientExtensions(), ca),
    issue(dir, 'scheduler', '/CN=system:kube-scheduler', clientExtensions(), ca),
  ]);

  const serviceAccountKey = join(dir, 'sa.key');
  const serviceAccountPub = join(dir, 'sa.pub');
  await newKey(serviceAccountKey);
  await openssl(['pkey', '-in', serviceAccountKey, '-pubout', '-out', serviceAccountPub]);

  return { ca, apiserver, admin, controllerManager, scheduler, serviceAccountKey, serviceAccountPub };
}
