// A real Kubernetes control plane for tests: etcd, kube-apiserver (RBAC, a
// service-account issuer, client-certificate auth) and kube-controller-manager
// on free loopback ports, with kube-scheduler and kwok when they were built so
// that pods of a Deployment land on a fake node and turn Ready. Binaries come
// from test/cluster/build.sh; everything else lives in one temp directory that
// stop() removes.

import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get as httpGet } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ApiConnection, apiRequest } from './api.js';
import { createClusterPki } from './certs.js';
import { writeKubeconfig } from './kubeconfig.js';
import { type CommandResult, type RunOptions, runCommand, runCommandOk } from './kubectl.js';
import { clusterBinDir, kwokBinaries, missingBinaries, readToolVersions, requiredBinaries } from './paths.js';
import {
  type Component,
  delay,
  killComponentNow,
  logTail,
  startComponent,
  stopComponent,
} from './processes.js';

export interface ControlPlaneOptions {
  /** Defaults to clusterBinDir() (MTKUBE_K8S_BIN or the build.sh cache). */
  readonly binDir?: string;
  /** 'auto' (default) starts kwok + kube-scheduler when both were built. */
  readonly fakeNodes?: boolean | 'auto';
  /** Upper bound for the whole start-up, in milliseconds. */
  readonly startTimeoutMs?: number;
  /** Keep the temp directory (logs, etcd data) after stop(), for debugging. */
  readonly keepTempDir?: boolean;
  /** Progress messages; silent by default. */
  readonly log?: (message: string) => void;
}

export interface ControlPlane {
  /** Admin (system:masters) kubeconfig. */
  readonly kubeconfigPath: string;
  /** Directory with kubectl, helm and the other built binaries. */
  readonly binDir: string;
  /** https://127.0.0.1:<port> */
  readonly server: string;
  readonly caPem: string;
  readonly tempDir: string;
  readonly kubernetesVersion: string;
  /** Name of the kwok node pods are scheduled to, if fake nodes run. */
  readonly fakeNodeName: string | undefined;
  /** Milliseconds from the call to startControlPlane until ready. */
  readonly startupMs: number;
  /** Token (TokenRequest API) kubeconfig for an existing ServiceAccount. */
  kubeconfigForServiceAccount(namespace: string, name: string): Promise<string>;
  /** kubectl as the admin; a non-zero exit is returned, not thrown. */
  kubectl(args: readonly string[], options?: RunOptions): Promise<CommandResult>;
  /** kubectl as the admin; throws on a non-zero exit, returns stdout. */
  kubectlOk(args: readonly string[], options?: RunOptions): Promise<string>;
  /** helm as the admin, with its cache, config and data under the temp dir. */
  helm(args: readonly string[], options?: RunOptions): Promise<CommandResult>;
  /** Names of components that exited on their own (empty while healthy). */
  exitedComponents(): string[];
  /** Ends every component; removes the temp dir unless asked to keep it. */
  stop(options?: { readonly keepTempDir?: boolean }): Promise<void>;
}

export class ClusterBinariesMissingError extends Error {
  readonly code = 'ERR_CLUSTER_BINARIES_MISSING';
  readonly binDir: string;
  readonly missing: readonly string[];
  constructor(binDir: string, missing: readonly string[]) {
    super(
      `control-plane binaries missing in ${binDir}: ${missing.join(', ')}; ` +
        'build them with `bash test/cluster/build.sh`',
    );
    this.name = 'ClusterBinariesMissingError';
    this.binDir = binDir;
    this.missing = missing;
  }
}

export class ClusterStartError extends Error {
  readonly code = 'ERR_CLUSTER_START';
  constructor(message: string) {
    super(message);
    this.name = 'ClusterStartError';
  }
}

// The virtual range Service ClusterIPs are drawn from. Nothing listens on or
// dials these addresses: there is no kube-proxy, so it never carries traffic.
const serviceCidr = '10.0.0.0/24';
const serviceApiIp = '10.0.0.1';
const fakeNodeName = 'kwok-node-0';

// Everything we started and not yet stopped, so an exiting process (a failed
// test run, Ctrl-C) can kill it synchronously.
const live = new Set<{ components: Component[]; tempDir: string; keep: boolean }>();
let exitHandlersInstalled = false;

function killAllNow(): void {
  for (const entry of live) {
    for (const c of entry.components) killComponentNow(c);
    if (!entry.keep) rmSync(entry.tempDir, { recursive: true, force: true });
  }
  live.clear();
}

function installExitHandlers(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.on('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      // Another listener (run-cluster.ts, a test runner) owns this signal and
      // will stop the cluster or exit, which the 'exit' handler covers.
      if (process.listenerCount(signal) > 1) return;
      // Otherwise keep the signal's default meaning, ending the process, which
      // our listener alone would swallow; but first end what we started.
      killAllNow();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** A port the kernel just handed out on 127.0.0.1; free again when we return. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

/** `count` different free ports (the kernel may hand out a just-closed one again). */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let attempt = 0; ports.size < count && attempt < count * 10; attempt++) ports.add(await freePort());
  if (ports.size < count) throw new ClusterStartError(`could not find ${count} free loopback ports`);
  return [...ports];
}

interface Deadline {
  readonly at: number;
  readonly started: number;
}

/**
 * Polls `check` until it returns true: at most every `intervalMs`, at most
 * until the deadline, and fails at once if a component it depends on exited.
 */
async function waitUntil(
  what: string,
  deadline: Deadline,
  watched: readonly Component[],
  check: () => Promise<boolean>,
  intervalMs = 250,
): Promise<void> {
  let lastError = '';
  const maxAttempts = Math.ceil((deadline.at - Date.now()) / intervalMs) + 1;
  for (let attempt = 0; attempt < maxAttempts && Date.now() < deadline.at; attempt++) {
    for (const c of watched) {
      if (c.hasExited()) {
        throw new ClusterStartError(`${c.name} exited while waiting for ${what}:\n${logTail(c)}`);
      }
    }
    try {
      if (await check()) return;
      lastError = '';
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await delay(attempt < 20 ? intervalMs : intervalMs * 4);
  }
  const tails = watched.map((c) => `--- ${c.name} ---\n${logTail(c, 15)}`).join('\n');
  throw new ClusterStartError(
    `timed out after ${Date.now() - deadline.started}ms waiting for ${what}` +
      `${lastError ? ` (last error: ${lastError})` : ''}\n${tails}`,
  );
}

function httpGetOk(url: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const started = Date.now();
  const deadline: Deadline = { started, at: started + (options.startTimeoutMs ?? 180_000) };
  const log = options.log ?? ((): void => {});
  const binDir = options.binDir ?? (await clusterBinDir());
  const missing = await missingBinaries(binDir, requiredBinaries);
  if (missing.length > 0) throw new ClusterBinariesMissingError(binDir, missing);
  const kwokMissing = await missingBinaries(binDir, kwokBinaries);
  const wantFake = options.fakeNodes ?? 'auto';
  if (wantFake === true && kwokMissing.length > 0) {
    throw new ClusterBinariesMissingError(binDir, kwokMissing);
  }
  const fakeNodes = wantFake !== false && kwokMissing.length === 0;
  const { kubernetes: kubernetesVersion } = await readToolVersions();
  const bin = (name: string): string => join(binDir, name);

  const tempDir = await mkdtemp(join(tmpdir(), 'mtkube-cluster-'));
  const components: Component[] = [];
  const entry = { components, tempDir, keep: options.keepTempDir ?? false };
  installExitHandlers();
  live.add(entry);

  const stop = async (stopOptions: { readonly keepTempDir?: boolean } = {}): Promise<void> => {
    if (!live.has(entry)) return;
    live.delete(entry);
    // Clients first, then the API server, then etcd, so no component spends
    // its grace period retrying a dependency that is already gone. The data is
    // thrown away, so a short grace before SIGKILL is enough.
    const stopOne = async (c: Component): Promise<void> => {
      const t = Date.now();
      await stopComponent(c, 3_000);
      log(`stopped ${c.name} in ${Date.now() - t}ms`);
    };
    const servers = ['kube-apiserver', 'etcd'];
    await Promise.all(components.filter((c) => !servers.includes(c.name)).map(stopOne));
    for (const name of servers) {
      for (const c of components.filter((x) => x.name === name)) await stopOne(c);
    }
    if (!entry.keep && !stopOptions.keepTempDir) await rm(tempDir, { recursive: true, force: true });
  };

  try {
    const [etcdClientPort, etcdPeerPort, apiPort] = await distinctFreePorts(3);
    const pki = await createClusterPki(tempDir, serviceApiIp);
    const read = (path: string): Promise<string> => readFile(path, 'utf8');
    const caPem = await read(pki.ca.cert);
    const server = `https://127.0.0.1:${apiPort}`;
    const logPath = (name: string): string => join(tempDir, `${name}.log`);
    const start = (name: string, args: readonly string[]): Component => {
      const c = startComponent(name, bin(name), args, logPath(name));
      components.push(c);
      log(`started ${name} (pid ${c.pid}), log ${c.logPath}`);
      return c;
    };

    const etcdClientUrl = `http://127.0.0.1:${etcdClientPort}`;
    const etcdPeerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    const etcd = start('etcd', [
      '--name=mtkube-test',
      `--data-dir=${join(tempDir, 'etcd')}`,
      `--listen-client-urls=${etcdClientUrl}`,
      `--advertise-client-urls=${etcdClientUrl}`,
      `--listen-peer-urls=${etcdPeerUrl}`,
      `--initial-advertise-peer-urls=${etcdPeerUrl}`,
      `--initial-cluster=mtkube-test=${etcdPeerUrl}`,
      // Test data is thrown away: skipping fsync makes every write much faster.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    await waitUntil('etcd /health', deadline, [etcd], () => httpGetOk(`${etcdClientUrl}/health`));
    log(`etcd healthy after ${Date.now() - started}ms`);

    const apiserver = start('kube-apiserver', [
      `--etcd-servers=${etcdClientUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      // The default reconciler publishes the advertise address as the
      // endpoint of Service default/kubernetes and refuses loopback ones. No
      // pod here dials that Service, so skip it rather than use a real IP.
      '--endpoint-reconciler-type=none',
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${pki.apiserver.cert}`,
      `--tls-private-key-file=${pki.apiserver.key}`,
      `--client-ca-file=${pki.ca.cert}`,
      '--authorization-mode=Node,RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      `--service-cluster-ip-range=${serviceCidr}`,
      '--allow-privileged=true',
      '--profiling=false',
      // The API server otherwise writes its own self-signed cert here.
      `--cert-dir=${join(tempDir, 'apiserver-certs')}`,
    ]);
    const admin: ApiConnection = {
      server,
      caPem,
      certPem: await read(pki.admin.cert),
      keyPem: await read(pki.admin.key),
    };
    await waitUntil('kube-apiserver /readyz', deadline, [etcd, apiserver], async () => {
      const res = await apiRequest(admin, 'GET', '/readyz');
      return res.status === 200;
    });
    log(`kube-apiserver ready after ${Date.now() - started}ms`);

    const kubeconfigPath = await writeKubeconfig(join(tempDir, 'admin.kubeconfig'), {
      server,
      caPem,
      userName: 'mtkube-admin',
      user: { clientCertificatePem: admin.certPem, clientKeyPem: admin.keyPem },
    });
    const kcmKubeconfig = await writeKubeconfig(join(tempDir, 'controller-manager.kubeconfig'), {
      server,
      caPem,
      userName: 'system:kube-controller-manager',
      user: {
        clientCertificatePem: await read(pki.controllerManager.cert),
        clientKeyPem: await read(pki.controllerManager.key),
      },
    });

    const controllerManager = start('kube-controller-manager', [
      `--kubeconfig=${kcmKubeconfig}`,
      '--bind-address=127.0.0.1',
      // No HTTPS endpoint: nothing scrapes it, and it would need another port.
      '--secure-port=0',
      '--leader-elect=false',
      '--controllers=*',
      // With per-controller credentials it creates ~40 ServiceAccounts and
      // tokens at start; the default client rate limit (20 qps) alone made
      // start-up take 6 s longer.
      '--kube-api-qps=200',
      '--kube-api-burst=400',
      // Each controller acts as its own ServiceAccount, as in a real cluster,
      // so RBAC mistakes in our manifests would show up here too.
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      `--root-ca-file=${pki.ca.cert}`,
      `--cluster-signing-cert-file=${pki.ca.cert}`,
      `--cluster-signing-key-file=${pki.ca.key}`,
    ]);
    const watched = [etcd, apiserver, controllerManager];

    if (fakeNodes) {
      const schedulerKubeconfig = await writeKubeconfig(join(tempDir, 'scheduler.kubeconfig'), {
        server,
        caPem,
        userName: 'system:kube-scheduler',
        user: {
          clientCertificatePem: await read(pki.scheduler.cert),
          clientKeyPem: await read(pki.scheduler.key),
        },
      });
      watched.push(
        start('kube-scheduler', [
          `--kubeconfig=${schedulerKubeconfig}`,
          '--bind-address=127.0.0.1',
          '--secure-port=0',
          '--leader-elect=false',
        ]),
        start('kwok', [
          `--kubeconfig=${kubeconfigPath}`,
          `--config=${join(binDir, 'kwok-stages.yaml')}`,
          '--manage-all-nodes=false',
          '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
          '--node-lease-duration-seconds=40',
          // Fake pod and node IPs only appear in status; keeping them in the
          // loopback range means a stray connection to one stays on this host.
          '--cidr=127.240.0.0/16',
          '--node-ip=127.0.0.1',
        ]),
      );
      const node = await apiRequest(admin, 'POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: fakeNodeName,
          annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
          labels: { type: 'kwok', 'kubernetes.io/hostname': fakeNodeName, 'kubernetes.io/os': 'linux' },
        },
      });
      if (node.status !== 201) {
        throw new ClusterStartError(`creating the fake node failed: ${node.status} ${node.body}`);
      }
      await waitUntil(`node ${fakeNodeName} Ready`, deadline, watched, async () => {
        const res = await apiRequest(admin, 'GET', `/api/v1/nodes/${fakeNodeName}`);
        if (res.status !== 200) return false;
        const parsed = JSON.parse(res.body) as {
          status?: { conditions?: { type?: string; status?: string }[] };
        };
        return (parsed.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
      });
      log(`fake node ready after ${Date.now() - started}ms`);
    }

    // The token controller and the service-account controller creating the
    // "default" ServiceAccount show that kube-controller-manager is working.
    await waitUntil('ServiceAccount default/default', deadline, watched, async () => {
      const res = await apiRequest(admin, 'GET', '/api/v1/namespaces/default/serviceaccounts/default');
      return res.status === 200;
    });
    const startupMs = Date.now() - started;
    log(`control plane ready after ${startupMs}ms`);

    const kubectlEnv = { ...process.env, KUBECONFIG: kubeconfigPath };
    // helm would otherwise read repositories and plugins from the user's home.
    const helmEnv = {
      ...kubectlEnv,
      HELM_CACHE_HOME: join(tempDir, 'helm', 'cache'),
      HELM_CONFIG_HOME: join(tempDir, 'helm', 'config'),
      HELM_DATA_HOME: join(tempDir, 'helm', 'data'),
    };
    const helm = (args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> =>
      runCommand(bin('helm'), args, { env: helmEnv, ...opts });
    // Discovery cache in the temp dir rather than ~/.kube/cache.
    const withCache = (args: readonly string[]): string[] => [
      `--cache-dir=${join(tempDir, 'kube-cache')}`,
      ...args,
    ];
    const kubectl = (args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> =>
      runCommand(bin('kubectl'), withCache(args), { env: kubectlEnv, ...opts });
    const kubectlOk = (args: readonly string[], opts: RunOptions = {}): Promise<string> =>
      runCommandOk(bin('kubectl'), withCache(args), { env: kubectlEnv, ...opts });

    const kubeconfigForServiceAccount = async (namespace: string, name: string): Promise<string> => {
      const token = (
        await kubectlOk(['create', 'token', name, '--namespace', namespace, '--duration=1h'], {
          timeoutMs: 30_000,
        })
      ).trim();
      return writeKubeconfig(join(tempDir, `sa-${namespace}-${name}.kubeconfig`), {
        server,
        caPem,
        namespace,
        userName: `system:serviceaccount:${namespace}:${name}`,
        user: { token },
      });
    };

    return {
      kubeconfigPath,
      binDir,
      server,
      caPem,
      tempDir,
      kubernetesVersion,
      fakeNodeName: fakeNodes ? fakeNodeName : undefined,
      startupMs,
      kubeconfigForServiceAccount,
      kubectl,
      kubectlOk,
      helm,
      exitedComponents: () => components.filter((c) => c.hasExited()).map((c) => c.name),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
