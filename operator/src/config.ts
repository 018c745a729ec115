// The operator's settings from its environment and command line (the command line wins), parsed
// and checked once; nothing else in the operator reads process.env.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DurationError, parseDurationSeconds } from './api/duration.js';
import { defaultPolicy, type ProxyPolicy } from './api/policy.js';
import type { LogLevel } from './logging.js';

export const DEFAULT_PROXY_IMAGE = 'ghcr.io/mtkube/mtproxy:0.1.0';
const IN_CLUSTER_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface OperatorConfig {
  /** Empty: every namespace. */
  readonly namespaces: readonly string[];
  readonly leaderElect: boolean;
  readonly leaseNamespace: string;
  readonly leaseName: string;
  readonly metricsPort: number;
  readonly metricsBind: string;
  readonly logLevel: LogLevel;
  readonly defaultProxyImage: string;
  /** What MTProxy authors may ask for. */
  readonly policy: ProxyPolicy;
  readonly resyncPeriodMs: number;
  readonly concurrency: number;
  readonly help: boolean;
}

export class OperatorConfigError extends Error {
  readonly code = 'ERR_OPERATOR_CONFIG';
  constructor(setting: string, problem: string) {
    super(`${setting}: ${problem}`);
    this.name = 'OperatorConfigError';
  }
}

interface Option {
  readonly env: string;
  readonly flag: string;
  readonly help: string;
  readonly type?: 'boolean';
}

export const OPTIONS: readonly Option[] = [
  {
    env: 'WATCH_NAMESPACES',
    flag: 'watch-namespaces',
    help: 'Comma-separated namespaces to watch (default: all).',
  },
  {
    env: 'LEADER_ELECT',
    flag: 'leader-elect',
    help: 'Elect a leader through a Lease: true or false (default true).',
  },
  {
    env: 'LEASE_NAMESPACE',
    flag: 'lease-namespace',
    help: "Namespace of the Lease (default: the pod's namespace in a cluster, else default).",
  },
  { env: 'LEASE_NAME', flag: 'lease-name', help: 'Name of the Lease (default mtkube-operator).' },
  {
    env: 'METRICS_PORT',
    flag: 'metrics-port',
    help: 'Port of /metrics, /healthz and /readyz (default 8080).',
  },
  { env: 'METRICS_BIND', flag: 'metrics-bind', help: 'Address of that port (default 0.0.0.0).' },
  { env: 'LOG_LEVEL', flag: 'log-level', help: 'error, warn, info or debug (default info).' },
  {
    env: 'DEFAULT_PROXY_IMAGE',
    flag: 'default-proxy-image',
    help: `Proxy image for MTProxies without spec.image (default ${DEFAULT_PROXY_IMAGE}).`,
  },
  {
    env: 'ALLOWED_IMAGES',
    flag: 'allowed-images',
    help: 'Images an MTProxy may run, comma-separated: repo/name (any tag), repo/name:tag, a prefix ending in *, or * (default: the repository of the default proxy image).',
  },
  {
    env: 'ALLOW_HOST_NETWORK',
    flag: 'allow-host-network',
    help: 'Let MTProxies use spec.service.hostNetwork: true or false (default false).',
  },
  {
    env: 'PROXY_SERVICE_ACCOUNT',
    flag: 'proxy-service-account',
    help: 'Run every proxy pod as this ServiceAccount; spec.podTemplate.serviceAccountName is then refused unless equal (default: the namespace default; a spec may not choose one).',
  },
  {
    env: 'RESYNC_PERIOD',
    flag: 'resync-period',
    help: 'Reconcile everything this often, e.g. 5m (default 5m).',
  },
  {
    env: 'MAX_CONCURRENT_RECONCILES',
    flag: 'max-concurrent-reconciles',
    help: 'MTProxies reconciled at the same time (default 2).',
  },
  { env: 'HELP', flag: 'help', help: 'Print this help and exit.', type: 'boolean' },
];

export function helpText(): string {
  const lines = [
    'Usage: mtproxy-operator [options]',
    '',
    'Runs MTProxy resources. Options (or the environment variable shown):',
    '',
  ];
  for (const o of OPTIONS)
    lines.push(
      `  --${o.flag}${o.type ? '' : ' VALUE'}`,
      `      ${o.env === 'HELP' ? '' : `[${o.env}] `}${o.help}`,
    );
  lines.push('', 'Kubernetes access: in a pod its ServiceAccount, otherwise KUBECONFIG or ~/.kube/config.');
  return `${lines.join('\n')}\n`;
}

function readInClusterNamespace(): string | undefined {
  try {
    return readFileSync(IN_CLUSTER_NAMESPACE_FILE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function parseBool(setting: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (['true', 'on', '1', 'yes'].includes(v)) return true;
  if (['false', 'off', '0', 'no'].includes(v)) return false;
  throw new OperatorConfigError(setting, `"${value}" is not true or false`);
}

function parseIntIn(setting: string, value: string, min: number, max: number): number {
  const n = Number(value.trim());
  if (!/^\d+$/.test(value.trim()) || n < min || n > max) {
    throw new OperatorConfigError(setting, `"${value}" is not a whole number from ${min} to ${max}`);
  }
  return n;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function parseOperatorConfig(
  env: NodeJS.ProcessEnv,
  argv: readonly string[],
  inClusterNamespace: () => string | undefined = readInClusterNamespace,
): OperatorConfig {
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const o of OPTIONS) options[o.flag] = { type: o.type ?? 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (err) {
    throw new OperatorConfigError('command line', (err as Error).message);
  }
  const get = (name: string): string | undefined => {
    const o = OPTIONS.find((x) => x.env === name)!;
    const flag = values[o.flag];
    if (flag !== undefined) return String(flag);
    const fromEnv = env[name];
    return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
  };

  const namespaces = (get('WATCH_NAMESPACES') ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const ns of namespaces) {
    if (!NAMESPACE.test(ns))
      throw new OperatorConfigError('WATCH_NAMESPACES', `"${ns}" is not a namespace name`);
  }
  const logLevel = (get('LOG_LEVEL') ?? 'info').toLowerCase();
  if (!['error', 'warn', 'info', 'debug'].includes(logLevel)) {
    throw new OperatorConfigError('LOG_LEVEL', `"${logLevel}" is not error, warn, info or debug`);
  }
  let resyncSeconds: number;
  try {
    resyncSeconds = parseDurationSeconds(get('RESYNC_PERIOD') ?? '5m');
  } catch (err) {
    if (err instanceof DurationError) throw new OperatorConfigError('RESYNC_PERIOD', err.message);
    throw err;
  }
  if (resyncSeconds < 1) throw new OperatorConfigError('RESYNC_PERIOD', 'must be at least 1s');
  const defaultProxyImage = get('DEFAULT_PROXY_IMAGE') ?? DEFAULT_PROXY_IMAGE;
  const images = (get('ALLOWED_IMAGES') ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
  const serviceAccount = get('PROXY_SERVICE_ACCOUNT');
  if (serviceAccount !== undefined && !NAMESPACE.test(serviceAccount)) {
    throw new OperatorConfigError(
      'PROXY_SERVICE_ACCOUNT',
      `"${serviceAccount}" is not a ServiceAccount name`,
    );
  }
  const base = defaultPolicy(defaultProxyImage);
  const policy: ProxyPolicy = {
    ...base,
    allowedImages: images.length > 0 ? images : base.allowedImages,
    allowHostNetwork: parseBool('ALLOW_HOST_NETWORK', get('ALLOW_HOST_NETWORK') ?? 'false'),
    serviceAccount,
  };
  return {
    namespaces,
    leaderElect: parseBool('LEADER_ELECT', get('LEADER_ELECT') ?? 'true'),
    leaseNamespace: get('LEASE_NAMESPACE') ?? inClusterNamespace() ?? env.POD_NAMESPACE ?? 'default',
    leaseName: get('LEASE_NAME') ?? 'mtkube-operator',
    metricsPort: parseIntIn('METRICS_PORT', get('METRICS_PORT') ?? '8080', 0, 65535),
    metricsBind: get('METRICS_BIND') ?? '0.0.0.0',
    logLevel: logLevel as LogLevel,
    defaultProxyImage,
    policy,
    resyncPeriodMs: resyncSeconds * 1000,
    concurrency: parseIntIn('MAX_CONCURRENT_RECONCILES', get('MAX_CONCURRENT_RECONCILES') ?? '2', 1, 64),
    help: values.help === true || get('HELP') === 'true',
  };
}
