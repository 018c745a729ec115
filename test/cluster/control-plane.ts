// A real Kubernetes control plane for tests: etcd, kube-apiserver (RBAC, a
// service-account issuer, client-certificate auth) and kube-controller-manager
// on free loopback ports, with kube-scheduler and kwok when they were built so
// that pods of a Deployment land on a fake node and turn Ready. Binaries come
// from test/cluster/build.sh; everything else lives in one temp directory that
// stop() removes.

import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ApiConnection, apiRequest } from './api.js';
import { type CertPair, createClusterPki } from './certs.js';
import {
  apiServerUrl,
  apiserverArgs,
  controllerManagerArgs,
  etcdArgs,
  etcdClientUrl,
  fakeNode,
  fakeNodeName,
  kwokArgs,
  type Layout,
  schedulerArgs,
  serviceApiIp,
} from './component-args.js';
import { ClusterBinariesMissingError, ClusterStartError } from './errors.js';
import { writeKubeconfig } from './kubeconfig.js';
import { type CommandResult, type RunOptions, runCommand, runCommandOk } from './kubectl.js';
import { type RealNode, startRealNode } from './node/real-node.js';
import { clusterBinDir, kwokBinaries, missingBinaries, readToolVersions, requiredBinaries } from './paths.js';
import { type Component, killComponentNow, startComponent, stopComponent } from './processes.js';
import { type Deadline, distinctFreePorts, httpGetOk, waitUntil } from './readiness.js';

export { ClusterBinariesMissingError, ClusterStartError } from './errors.js';

export interface ControlPlaneOptions {
  /** Defaults to clusterBinDir() (MTKUBE_K8S_BIN or the build.sh cache). */
  readonly binDir?: string;
  /** 'auto' (default) starts kwok + kube-scheduler when both were built. */
  readonly fakeNodes?: boolean | 'auto';
  /** Upper bound for the whole start-up, in milliseconds. */
  readonly startTimeoutMs?: number;
  /** Keep the temp directory (logs, etcd data) after stop(), for debugging. */
  readonly keepTempDir?: boolean;
  /**
   * Also start a real node (kubelet, containerd, runc, CNI; node/real-node.ts)
   * with kube-scheduler, instead of kwok's fake node.
   */
  readonly realNode?: boolean;
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
  /** The real node, when started with `realNode: true`. */
  readonly realNode: RealNode | undefined;
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

// Everything we started and not yet stopped, so an exiting process (a failed
// test run, Ctrl-C) can kill it synchronously.
const live = new Set<{ components: Component[]; tempDir: string; keep: boolean; node?: RealNode }>();
let exitHandlersInstalled = false;

function killAllNow(): void {
  for (const entry of live) {
    entry.node?.killNow();
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
  const fakeNodes = !options.realNode && wantFake !== false && kwokMissing.length === 0;
  const { kubernetes: kubernetesVersion } = await readToolVersions();
  const bin = (name: string): string => join(binDir, name);

  const tempDir = await mkdtemp(join(tmpdir(), 'mtkube-cluster-'));
  const components: Component[] = [];
  const entry: { components: Component[]; tempDir: string; keep: boolean; node?: RealNode } = {
    components,
    tempDir,
    keep: options.keepTempDir ?? false,
  };
  let realNode: RealNode | undefined;
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
    if (realNode) {
      // Its containers and host settings first, while the API server is up.
      const node = realNode;
      realNode = undefined;
      entry.node = undefined;
      await node.stop();
    }
    const servers = ['kube-apiserver', 'etcd'];
    await Promise.all(components.filter((c) => !servers.includes(c.name)).map(stopOne));
    for (const name of servers) {
      for (const c of components.filter((x) => x.name === name)) await stopOne(c);
    }
    if (!entry.keep && !stopOptions.keepTempDir) await rm(tempDir, { recursive: true, force: true });
  };

  try {
    const [etcdClientPort = 0, etcdPeerPort = 0, apiPort = 0, kubeletPort = 0] = await distinctFreePorts(4);
    const pki = await createClusterPki(tempDir, serviceApiIp);
    const read = (path: string): Promise<string> => readFile(path, 'utf8');
    const caPem = await read(pki.ca.cert);
    const server = `https://127.0.0.1:${apiPort}`;
    const admin: ApiConnection = {
      server,
      caPem,
      certPem: await read(pki.admin.cert),
      keyPem: await read(pki.admin.key),
    };
    const clientKubeconfig = async (file: string, userName: string, cert: CertPair): Promise<string> =>
      writeKubeconfig(join(tempDir, file), {
        server,
        caPem,
        userName,
        user: { clientCertificatePem: await read(cert.cert), clientKeyPem: await read(cert.key) },
      });
    const layout: Layout = {
      tempDir,
      binDir,
      etcdClientPort,
      etcdPeerPort,
      apiPort,
      pki,
      kubeconfigs: {
        admin: await clientKubeconfig('admin.kubeconfig', 'mtkube-admin', pki.admin),
        controllerManager: await clientKubeconfig(
          'controller-manager.kubeconfig',
          'system:kube-controller-manager',
          pki.controllerManager,
        ),
        scheduler: await clientKubeconfig('scheduler.kubeconfig', 'system:kube-scheduler', pki.scheduler),
      },
    };
    const kubeconfigPath = layout.kubeconfigs.admin;
    const start = (name: string, args: readonly string[]): Component => {
      const c = startComponent(name, bin(name), args, join(tempDir, `${name}.log`));
      components.push(c);
      log(`started ${name} (pid ${c.pid}), log ${c.logPath}`);
      return c;
    };

    const etcd = start('etcd', etcdArgs(layout));
    await waitUntil('etcd /health', deadline, [etcd], () => httpGetOk(`${etcdClientUrl(layout)}/health`));
    log(`etcd healthy after ${Date.now() - started}ms`);

    const apiserver = start('kube-apiserver', apiserverArgs(layout));
    await waitUntil('kube-apiserver /readyz', deadline, [etcd, apiserver], async () => {
      const res = await apiRequest(admin, 'GET', '/readyz');
      return res.status === 200;
    });
    log(`kube-apiserver ready at ${apiServerUrl(layout)} after ${Date.now() - started}ms`);

    const watched = [etcd, apiserver, start('kube-controller-manager', controllerManagerArgs(layout))];
    if (fakeNodes) {
      watched.push(start('kube-scheduler', schedulerArgs(layout)), start('kwok', kwokArgs(layout)));
      const node = await apiRequest(admin, 'POST', '/api/v1/nodes', fakeNode());
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
    if (options.realNode) {
      watched.push(start('kube-scheduler', schedulerArgs(layout)));
      realNode = await startRealNode({
        tempDir,
        apiPort,
        kubeletPort,
        adminKubeconfig: kubeconfigPath,
        caCertPath: pki.ca.cert,
        admin,
        deadline: { started: deadline.started, at: Math.max(deadline.at, Date.now() + 600_000) },
        log,
      });
      entry.node = realNode;
      log(`real node ${realNode.name} ready after ${Date.now() - started}ms`);
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
      get realNode() {
        return realNode;
      },
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
