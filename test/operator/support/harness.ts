// Running the operator against the shared test control plane: the CRD installed once, a fresh
// namespace per test, and operators started in-process (so tests can hand them a fake clock)
// that watch only that namespace and keep their Lease there.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import type { Context } from 'mocha';
import { PERMISSIVE_POLICY } from '../../../operator/src/api/policy.js';
import type { MTProxy, MTProxySpec } from '../../../operator/src/api/types.js';
import { createLogger, silentLogger } from '../../../operator/src/logging.js';
import { Operator, type OperatorOptions } from '../../../operator/src/operator.js';
import type { ControlPlane } from '../../cluster/control-plane.js';
import { eventually } from '../../cluster/eventually.js';
import { createNamespace, deleteNamespace, getClusterOrSkip } from '../../cluster/shared-cluster.js';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const crdPath = join(repoRoot, 'crds', 'mtkube.dev_mtproxies.yaml');
export const rbacPath = join(repoRoot, 'operator', 'deploy', 'rbac.yaml');
export const TEST_IMAGE = 'example.invalid/mtkube/mtproxy:test';

let crdInstalled: Promise<void> | undefined;

/** The shared cluster with the MTProxy CRD installed, or a skipped suite. */
export async function clusterWithCrd(ctx: Context): Promise<ControlPlane> {
  const cluster = await getClusterOrSkip(ctx);
  crdInstalled ??= (async () => {
    await cluster.kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', crdPath]);
    await cluster.kubectlOk(
      ['wait', '--for=condition=Established', 'crd/mtproxies.mtkube.dev', '--timeout=30s'],
      {
        timeoutMs: 40_000,
      },
    );
  })();
  await crdInstalled;
  return cluster;
}

/**
 * The hooks every operator suite runs around its tests: before all, the shared cluster with the CRD
 * (or a skipped suite); before each test, a fresh TestBed (its own namespace) handed to `receive`;
 * after each, that bed disposed. Call it inside describe(), after the suite's own afterEach hooks,
 * so that what they stop is gone before the namespace is.
 */
export function freshTestBedPerTest(receive: (bed: TestBed) => void): void {
  let cluster: ControlPlane;
  let bed: TestBed | undefined;
  before(async function () {
    this.timeout(240_000);
    cluster = await clusterWithCrd(this);
  });
  beforeEach(async () => {
    bed = await TestBed.create(cluster);
    receive(bed);
  });
  afterEach(async () => {
    await bed?.dispose();
  });
}

export interface JsonObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { kind: string; name: string; uid: string }[];
    creationTimestamp?: string;
  };
  [key: string]: unknown;
}

/** What one test works with: its namespace and the operators it started. */
export class TestBed {
  readonly operators: Operator[] = [];
  constructor(
    readonly cluster: ControlPlane,
    readonly ns: string,
  ) {}

  static async create(cluster: ControlPlane): Promise<TestBed> {
    return new TestBed(cluster, await createNamespace(cluster, 'op'));
  }

  readonly #volumes: string[] = [];

  async dispose(): Promise<void> {
    await Promise.all(this.operators.map((o) => o.stop()));
    await deleteNamespace(this.cluster, this.ns);
    for (const pv of this.#volumes) await this.cluster.kubectl(['delete', 'pv', pv, '--wait=false']);
  }

  /**
   * A PersistentVolume reserved for the claim `claim` of this namespace: the test cluster has no
   * storage provisioner, so a pod with a claim (a single proxy with quotas keeps /data on one)
   * is only scheduled when a volume is there for it. Nothing is ever written to it (fake node).
   */
  async provideVolume(claim: string): Promise<void> {
    const name = `${this.ns}-${claim}`.slice(0, 63);
    this.#volumes.push(name);
    await this.apply({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Delete',
        storageClassName: '',
        hostPath: { path: `/tmp/mtkube-test-pv/${name}` },
        claimRef: { namespace: this.ns, name: claim },
      },
    });
  }

  kubeConfig(path = this.cluster.kubeconfigPath): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    return kc;
  }

  /** Starts an operator watching this test's namespace; admin credentials unless a kubeconfig is given. */
  async startOperator(
    options: Partial<OperatorOptions> & { kubeconfigPath?: string } = {},
  ): Promise<Operator> {
    const verbose = Boolean(process.env.MTKUBE_TEST_VERBOSE);
    const op = new Operator({
      kubeConfig: this.kubeConfig(options.kubeconfigPath),
      namespaces: [this.ns],
      leaderElect: false,
      leaseNamespace: this.ns,
      leaseName: 'mtkube-operator',
      metricsPort: 0,
      metricsBind: '127.0.0.1',
      defaultProxyImage: TEST_IMAGE,
      // Tests about something else run unrestricted; the policy's own tests pass theirs.
      policy: PERMISSIVE_POLICY,
      log: verbose ? createLogger('debug') : silentLogger,
      resyncPeriodMs: 3_000,
      preflightRetryMs: 1_000,
      processMetrics: false,
      leaseDurationMs: 4_000,
      renewDeadlineMs: 3_000,
      retryPeriodMs: 500,
      ...options,
    });
    this.operators.push(op);
    await op.start();
    return op;
  }

  async stopOperator(op: Operator): Promise<void> {
    await op.stop();
    this.operators.splice(this.operators.indexOf(op), 1);
  }

  async kubectl(args: readonly string[], input?: string) {
    return this.cluster.kubectl(['--namespace', this.ns, ...args], input === undefined ? {} : { input });
  }

  async kubectlOk(args: readonly string[], input?: string): Promise<string> {
    return this.cluster.kubectlOk(['--namespace', this.ns, ...args], input === undefined ? {} : { input });
  }

  async apply(obj: object): Promise<void> {
    await this.kubectlOk(['apply', '-f', '-'], JSON.stringify(obj));
  }

  /** Creates or updates an MTProxy with this spec. */
  async applyProxy(name: string, spec: MTProxySpec): Promise<void> {
    await this.apply({ apiVersion: 'mtkube.dev/v1alpha1', kind: 'MTProxy', metadata: { name }, spec });
  }

  async get<T = JsonObject>(kind: string, name: string): Promise<T> {
    return JSON.parse(await this.kubectlOk(['get', kind, name, '-o', 'json'])) as T;
  }

  async find<T = JsonObject>(kind: string, name: string): Promise<T | undefined> {
    const r = await this.kubectl(['get', kind, name, '-o', 'json', '--ignore-not-found']);
    if (r.code !== 0) throw new Error(r.stderr);
    return r.stdout.trim() ? (JSON.parse(r.stdout) as T) : undefined;
  }

  async list<T = JsonObject>(kind: string, selector?: string): Promise<T[]> {
    const args = ['get', kind, '-o', 'json', ...(selector ? ['-l', selector] : [])];
    return (JSON.parse(await this.kubectlOk(args)) as { items: T[] }).items;
  }

  async proxy(name: string): Promise<MTProxy> {
    return this.get<MTProxy>('mtproxy', name);
  }

  /** The decoded data of a Secret. */
  async secretData(name: string): Promise<Record<string, string>> {
    const s = await this.get<{ data?: Record<string, string> }>('secret', name);
    return Object.fromEntries(
      Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    );
  }

  /** Waits until the MTProxy's condition has the status (and reason, if given) for its current generation. */
  async waitForCondition(
    name: string,
    type: string,
    status: string,
    reason?: string,
    timeoutMs = 45_000,
  ): Promise<MTProxy> {
    return eventually(
      async () => {
        const m = await this.proxy(name);
        const c = m.status?.conditions?.find((x) => x.type === type);
        const where = `${type} of ${name}: ${JSON.stringify(c)} (generation ${m.metadata.generation}, observed ${m.status?.observedGeneration})`;
        if (!c || c.status !== status || (reason && c.reason !== reason)) throw new Error(where);
        if (m.status?.observedGeneration !== m.metadata.generation) throw new Error(where);
        return m;
      },
      { timeoutMs, intervalMs: 300 },
    );
  }
}

export interface ContainerSpec {
  name: string;
  image: string;
  env: {
    name: string;
    value?: string;
    valueFrom?: { secretKeyRef?: { name: string; key: string }; fieldRef?: { fieldPath: string } };
  }[];
  args?: string[];
  ports: { name: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

export interface VolumeSpec {
  name: string;
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  emptyDir?: Record<string, unknown>;
}

export interface DeploymentJson extends JsonObject {
  spec: {
    replicas: number;
    paused?: boolean;
    template: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: { containers: ContainerSpec[]; volumes?: VolumeSpec[]; terminationGracePeriodSeconds: number };
    };
  };
  status?: { replicas?: number; updatedReplicas?: number; availableReplicas?: number };
}

export function envOf(dep: DeploymentJson): Record<string, ContainerSpec['env'][number]> {
  return Object.fromEntries(dep.spec.template.spec.containers[0]!.env.map((e) => [e.name, e]));
}

/** What the kubelet would give the container: values, Secret keys, downward-API fields. */
export async function resolveContainerEnv(
  bed: TestBed,
  container: ContainerSpec,
  podIP: string,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const e of container.env) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      const { name, key } = e.valueFrom.secretKeyRef;
      const value = (await bed.secretData(name))[key];
      if (value === undefined) throw new Error(`Secret ${name} has no key ${key}`);
      env[e.name] = value;
    } else if (e.valueFrom?.fieldRef) {
      const path = e.valueFrom.fieldRef.fieldPath;
      if (path !== 'status.podIP' && path !== 'status.hostIP') throw new Error(`unexpected fieldRef ${path}`);
      env[e.name] = podIP;
    } else {
      env[e.name] = '';
    }
  }
  return env;
}
