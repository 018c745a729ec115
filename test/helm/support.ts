// The chart as a user meets it: rendered or installed with the real helm, applied to the real API
// server, and the operator run as the ServiceAccount the chart created.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { ControlPlane } from '../cluster/control-plane.js';
import { eventually } from '../cluster/eventually.js';
import type { CommandResult } from '../cluster/kubectl.js';
import { httpGet } from '../support/http-get.js';
import { freePort } from '../support/proxy-process.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const chartDir = join(repoRoot, 'charts', 'mtkube');
export const crdPath = join(repoRoot, 'crds', 'mtkube.dev_mtproxies.yaml');

/** A Kubernetes object as helm renders it. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

export type Values = Record<string, unknown>;

/** Every YAML document in `text`, empty ones left out. */
export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null && typeof m === 'object');
}

export function findManifest(docs: readonly Manifest[], kind: string, name?: string): Manifest | undefined {
  return docs.find((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
}

/** Writes values to a file for `--values`; the files live until `cleanup()`. */
export class ValuesFiles {
  readonly #dir = mkdtempSync(join(tmpdir(), 'mtkube-helm-values-'));
  #count = 0;

  write(values: Values): string {
    const path = join(this.#dir, `values-${this.#count++}.json`);
    writeFileSync(path, JSON.stringify(values));
    return path;
  }

  cleanup(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** `helm template` as the cluster's own Kubernetes version; returns helm's result unchanged. */
export function helmTemplate(
  cluster: ControlPlane,
  release: string,
  namespace: string,
  valuesFile: string | undefined,
  extra: readonly string[] = [],
): Promise<CommandResult> {
  return cluster.helm(
    [
      'template',
      release,
      chartDir,
      '--namespace',
      namespace,
      '--kube-version',
      cluster.kubernetesVersion,
      ...(valuesFile ? ['--values', valuesFile] : []),
      ...extra,
    ],
    { timeoutMs: 30_000 },
  );
}

/** Fails with helm's own words when helm failed. */
export function ok(result: CommandResult, what: string): string {
  if (result.code !== 0)
    throw new Error(`${what} exited with ${result.code}: ${result.stderr || result.stdout}`);
  return result.stdout;
}

/** A namespace where the API server enforces the restricted Pod Security Standard and warns about it. */
export async function createRestrictedNamespace(cluster: ControlPlane, name: string): Promise<void> {
  await cluster.kubectlOk(['create', 'namespace', name]);
  await cluster.kubectlOk([
    'label',
    'namespace',
    name,
    'pod-security.kubernetes.io/enforce=restricted',
    'pod-security.kubernetes.io/warn=restricted',
  ]);
}

/** Installs the MTProxy CRD from crds/ (as `kubectl apply -f crds/` would) and waits for it. */
export async function installCrd(cluster: ControlPlane): Promise<void> {
  await cluster.kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', crdPath]);
  await cluster.kubectlOk(
    ['wait', '--for=condition=Established', 'crd/mtproxies.mtkube.dev', '--timeout=30s'],
    { timeoutMs: 40_000 },
  );
}

/** The env of the first container of a Deployment, as name -> value (every value is literal). */
export function containerEnv(deployment: Manifest): Record<string, string> {
  const spec = deployment.spec as {
    template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } };
  };
  const env = spec.template.spec.containers[0]?.env ?? [];
  return Object.fromEntries(env.map((e) => [e.name, e.value ?? '']));
}

/** The operator CLI running on this machine, as a pod of the chart would run it. */
export interface OperatorProcess {
  readonly port: number;
  output(): string;
  readyz(): Promise<{ status: number; body: string }>;
  /** SIGTERM, then the exit code (bounded). */
  stop(): Promise<number | null>;
}

/**
 * Runs `operator/src/cli.ts` with the environment of the chart's Deployment, credentials from
 * `kubeconfigPath`, and /metrics on a free loopback port instead of the pod's.
 */
export async function startOperatorProcess(
  kubeconfigPath: string,
  podEnv: Record<string, string>,
): Promise<OperatorProcess> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'operator/src/cli.ts')],
    {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        ...podEnv,
        KUBECONFIG: kubeconfigPath,
        METRICS_PORT: String(port),
        METRICS_BIND: '127.0.0.1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    port,
    output: () => out,
    readyz: async () => {
      const r = await httpGet(`http://127.0.0.1:${port}/readyz`, { timeoutMs: 3_000 });
      return { status: r.status, body: r.body };
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Waits until the operator answers /readyz with 200; the last answer explains a time-out. */
export async function waitReady(op: OperatorProcess, timeoutMs = 30_000): Promise<string> {
  return eventually(
    async () => {
      const r = await op.readyz();
      if (r.status !== 200) throw new Error(`/readyz ${r.status}: ${r.body}\n${op.output().slice(-2000)}`);
      return r.body;
    },
    { timeoutMs, intervalMs: 300 },
  );
}

/**
 * Waits until the operator leads: /readyz turns 200 once the preflight passed, which on a busy
 * machine can come before the first Lease write.
 */
export async function waitLeading(op: OperatorProcess, timeoutMs = 30_000): Promise<string> {
  return eventually(
    async () => {
      const r = await op.readyz();
      if (r.status !== 200 || !r.body.startsWith('ok: leading')) {
        throw new Error(`/readyz ${r.status}: ${r.body}\n${op.output().slice(-2000)}`);
      }
      return r.body;
    },
    { timeoutMs, intervalMs: 300 },
  );
}

/**
 * Waits until the API server's authorizer lets the ServiceAccount list MTProxies (fresh RBAC
 * bindings take a moment), so the operator's first preflight check already passes.
 */
export async function waitForPermission(
  cluster: ControlPlane,
  serviceAccount: string,
  args: readonly string[],
): Promise<void> {
  await eventually(
    async () => {
      const r = await cluster.kubectl(['auth', 'can-i', ...args, `--as=${serviceAccount}`]);
      if (r.stdout.trim() !== 'yes') throw new Error(`${serviceAccount} may not yet: ${args.join(' ')}`);
    },
    { timeoutMs: 15_000, intervalMs: 200 },
  );
}
