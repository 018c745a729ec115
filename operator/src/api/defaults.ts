// MTProxy spec -> ProxySettings: every default applied, every choice that depends on another field
// made (effective upstream mode, client modes, where EXTERNAL_IP comes from), and the checks the
// CRD schema cannot express (time zones, IP literals). Renderers read only ProxySettings.
import { isIP } from 'node:net';
import { parseBytes } from '../../../proxy/src/users/users-file.js';
import { type DailySchedule, parseDailySchedule, ScheduleError } from '../schedule/daily.js';
import { DurationError, parseDurationSeconds } from './duration.js';
import type { IntOrString, Mode, MTProxySpec, MTProxyUser, SecretKeyRef, ServiceType } from './types.js';

export const DEFAULTS = {
  replicas: 1,
  workers: 2,
  maxConnections: 60_000,
  port: 443,
  containerPort: 8443,
  metricsPort: 9102,
  statsPort: 2398,
  drainSeconds: 25,
  /** Added to the drain time for the pod's terminationGracePeriodSeconds; covers the preStop pause. */
  graceMarginSeconds: 15,
  /** preStop pause so endpoints drop the pod before the proxy stops accepting. */
  preStopSleepSeconds: 3,
  secretsKey: 'secrets',
  adTagKey: 'tag',
  schedule: '04:00',
  timeZone: 'UTC',
} as const;

export type ResolvedExternalIPSource = 'Explicit' | 'LoadBalancer' | 'NodeHostIP' | 'Detect';

export type SecretsSource =
  | { readonly kind: 'generated'; readonly count: number; readonly retain: boolean }
  | { readonly kind: 'existing'; readonly name: string; readonly key: string; readonly retain: boolean };

/** A user as the users file needs it, minus the secret (which never is in the spec). */
export interface UserSettings {
  readonly name: string;
  readonly enabled: boolean;
  readonly maxConnections: number | undefined;
  readonly maxUniqueIps: number | undefined;
  readonly uniqueIpWindowSeconds: number | undefined;
  /** As written: a byte count or a string such as "50GiB" (checked with the proxy's parser). */
  readonly quota: IntOrString | undefined;
  readonly expires: string | undefined;
  readonly quotaPeriod: 'none' | 'daily' | 'weekly' | 'monthly' | undefined;
  /** Lowercase 32 hex digits. */
  readonly adTag: string | undefined;
  readonly secretRotation: number;
}

/** Where the users' secrets come from: generated and kept by the operator, or a Secret you manage. */
export type UserSecretsSource =
  | { readonly kind: 'generated' }
  | { readonly kind: 'existing'; readonly name: string };

export type AdTagSource =
  | { readonly kind: 'value'; readonly value: string }
  | { readonly kind: 'secret'; readonly ref: Required<SecretKeyRef> };

/** Where the replicas share state (proxy STATE_URL), if anywhere. */
export type SharedStateSource =
  | { readonly kind: 'none' }
  | { readonly kind: 'external'; readonly ref: Required<SecretKeyRef> }
  | { readonly kind: 'managed'; readonly image: string; readonly storageSize: string };

export const MANAGED_REDIS_DEFAULTS = { image: 'redis:7-alpine', storageSize: '1Gi', urlKey: 'url' } as const;

export interface ProxySettings {
  readonly sharedState: SharedStateSource;
  readonly replayFallback: 'local' | 'refuse' | undefined;
  readonly limitsFallback: 'share' | 'refuse' | undefined;
  readonly quotaTimeZone: string | undefined;
  /**
   * Where /data lives: a PersistentVolumeClaim when one pod keeps quota usage without a store (so
   * a replaced pod does not reset it), otherwise an emptyDir.
   */
  readonly dataVolume: 'emptyDir' | 'pvc';
  /** Quotas counted per pod: several replicas and no store (reported in SharedStateReady). */
  readonly quotasPerPod: boolean;
  readonly replicas: number;
  readonly paused: boolean;
  readonly image: string;
  readonly imagePullPolicy: string | undefined;
  readonly imagePullSecrets: readonly { name: string }[];
  readonly workers: number;
  readonly maxConnections: number;
  /** What clients connect to (Service port; node port with hostNetwork). */
  readonly port: number;
  /** What the proxy listens on in the pod. */
  readonly listenPort: number;
  readonly hostNetwork: boolean;
  readonly modes: readonly Mode[];
  readonly logLevel: string;
  readonly secrets: SecretsSource;
  readonly users: readonly UserSettings[];
  readonly userSecrets: UserSecretsSource;
  readonly adTag: AdTagSource | undefined;
  readonly upstreamMode: 'auto' | 'direct' | 'middle';
  /** What `auto` means for this spec: middle proxies iff there is an ad tag (the proxy's or a user's). */
  readonly effectiveMode: 'direct' | 'middle';
  readonly preferIPv6: boolean | undefined;
  readonly dcAddresses: readonly { dc: number; address: string }[];
  readonly telegramConfig: {
    readonly proxySecretURL: string | undefined;
    readonly proxyConfigURL: string | undefined;
    readonly refreshIntervalSeconds: number | undefined;
  };
  readonly fakeTLS: {
    readonly domain: string | undefined;
    readonly unknownSNI: string | undefined;
    readonly mask: { readonly enabled: boolean | undefined; readonly host?: string; readonly port?: number };
    readonly profile: { readonly mode: 'auto' | 'off'; readonly refreshIntervalSeconds: number | undefined };
  };
  readonly proxyProtocol: string;
  readonly publicAddress: {
    readonly host: string | undefined;
    readonly port: number;
    readonly externalIP: string | undefined;
    readonly externalIPSource: ResolvedExternalIPSource;
  };
  readonly service: {
    readonly type: ServiceType;
    readonly annotations: Readonly<Record<string, string>>;
    readonly labels: Readonly<Record<string, string>>;
    readonly externalTrafficPolicy: 'Cluster' | 'Local';
    readonly loadBalancerClass: string | undefined;
    readonly loadBalancerSourceRanges: readonly string[] | undefined;
    readonly nodePort: number | undefined;
  };
  readonly statsAllowCIDRs: readonly string[] | undefined;
  readonly metrics: {
    readonly enabled: boolean;
    readonly port: number;
    readonly serviceMonitor: {
      readonly enabled: boolean;
      readonly interval: string | undefined;
      readonly labels: Readonly<Record<string, string>>;
    };
  };
  readonly timeouts: {
    readonly handshakeSeconds: number | undefined;
    readonly idleSeconds: number | undefined;
    readonly drainSeconds: number;
  };
  readonly restart: DailySchedule | undefined;
  readonly podTemplate: NonNullable<MTProxySpec['podTemplate']>;
  readonly podDisruptionBudget:
    | { readonly maxUnavailable?: IntOrString; readonly minAvailable?: IntOrString }
    | undefined;
  readonly terminationGracePeriodSeconds: number;
}

/** A spec the API server accepted but the operator cannot run; the message names the field. */
export class SpecError extends Error {
  readonly code: string = 'ERR_MTPROXY_SPEC';
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(problems.join('; '));
    this.name = 'SpecError';
    this.problems = problems;
  }
}

export interface ResolveOptions {
  readonly defaultImage: string;
}

function duration(field: string, value: string | undefined, problems: string[]): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseDurationSeconds(value);
  } catch (err) {
    if (err instanceof DurationError) {
      problems.push(`${field}: ${err.message}`);
      return undefined;
    }
    throw err;
  }
}

function resolveExternalIPSource(spec: MTProxySpec, serviceType: ServiceType, hostNetwork: boolean) {
  const requested = spec.publicAddress?.externalIPSource ?? 'Auto';
  if (requested !== 'Auto') return requested;
  if (spec.publicAddress?.externalIP) return 'Explicit';
  if (hostNetwork) return 'NodeHostIP';
  if (serviceType === 'LoadBalancer') return 'LoadBalancer';
  return 'Detect';
}

/** Names the proxy gives the secrets of SECRET; a user of that name would hide one of them. */
const ENV_SECRET_NAME = /^secret[0-9]+$/;

function resolveUsers(users: readonly MTProxyUser[], problems: string[]): UserSettings[] {
  const seen = new Set<string>();
  return users.map((u, i) => {
    const where = `spec.users[${i}]`;
    if (seen.has(u.name)) problems.push(`${where}.name: "${u.name}" is given twice`);
    seen.add(u.name);
    if (ENV_SECRET_NAME.test(u.name)) {
      problems.push(`${where}.name: "${u.name}" is reserved for the secrets of spec.secrets`);
    }
    if (u.quota !== undefined && parseBytes(u.quota) === undefined) {
      problems.push(`${where}.quota: "${u.quota}" is not a byte count such as 10737418240 or "10GiB"`);
    }
    if (u.expires !== undefined && Number.isNaN(Date.parse(u.expires))) {
      problems.push(`${where}.expires: "${u.expires}" is not a date such as 2027-01-01T00:00:00Z`);
    }
    return {
      name: u.name,
      enabled: u.enabled ?? true,
      maxConnections: u.maxConnections,
      maxUniqueIps: u.maxUniqueIPs,
      uniqueIpWindowSeconds: u.uniqueIPWindowSeconds,
      quota: u.quota,
      expires: u.expires,
      quotaPeriod: u.quotaPeriod,
      adTag: u.adTag?.toLowerCase(),
      secretRotation: u.secretRotation ?? 0,
    };
  });
}

/** Throws SpecError listing every problem found. */
export function resolveSpec(spec: MTProxySpec = {}, options: ResolveOptions): ProxySettings {
  const problems: string[] = [];
  const hostNetwork = spec.service?.hostNetwork ?? false;
  const port = spec.port ?? DEFAULTS.port;
  const serviceType = spec.service?.type ?? 'LoadBalancer';
  const domain = spec.fakeTLS?.domain;

  const externalIP = spec.publicAddress?.externalIP;
  if (externalIP !== undefined && isIP(externalIP) === 0) {
    problems.push(`spec.publicAddress.externalIP: "${externalIP}" is not an IP address`);
  }
  const image = spec.image ?? options.defaultImage;
  if (!image) problems.push('spec.image: no image given and the operator has no DEFAULT_PROXY_IMAGE');

  const tag = spec.adTag;
  const adTag: AdTagSource | undefined = tag?.value
    ? { kind: 'value', value: tag.value.toLowerCase() }
    : tag?.secretKeyRef
      ? {
          kind: 'secret',
          ref: { name: tag.secretKeyRef.name, key: tag.secretKeyRef.key ?? DEFAULTS.adTagKey },
        }
      : undefined;
  const upstreamMode = spec.upstream?.mode ?? 'auto';
  if (adTag && upstreamMode === 'direct') problems.push('spec.adTag: an ad tag needs the middle proxy');
  const users = resolveUsers(spec.users ?? [], problems);
  const userTags = users.some((u) => u.adTag !== undefined);
  if (userTags && upstreamMode === 'direct') {
    problems.push("spec.users: a user's ad tag needs the middle proxy");
  }
  const secretsSpec = spec.secrets ?? {};
  const count = secretsSpec.count ?? 1;
  if (count === 0 && !secretsSpec.existingSecretName && users.length === 0) {
    problems.push('spec.secrets.count: 0 serves nobody without spec.users');
  }

  const modes: Mode[] = spec.modes?.length ? [...spec.modes] : domain ? ['tls'] : ['secure'];
  if (modes.includes('tls') && !domain) problems.push('spec.modes: tls needs spec.fakeTLS.domain');

  let restart: DailySchedule | undefined;
  if (spec.restart?.enabled) {
    const jitter = duration('spec.restart.jitter', spec.restart.jitter ?? '0', problems) ?? 0;
    try {
      restart = parseDailySchedule(
        spec.restart.schedule ?? DEFAULTS.schedule,
        spec.restart.timeZone ?? DEFAULTS.timeZone,
        jitter,
      );
    } catch (err) {
      if (!(err instanceof ScheduleError)) throw err;
      problems.push(`spec.restart: ${err.message}`);
    }
  }

  const drainSeconds = spec.timeouts?.drainSeconds ?? DEFAULTS.drainSeconds;
  const refresh = duration(
    'spec.telegramConfig.refreshInterval',
    spec.telegramConfig?.refreshInterval,
    problems,
  );
  const profileRefresh = duration(
    'spec.fakeTLS.profile.refreshInterval',
    spec.fakeTLS?.profile?.refreshInterval,
    problems,
  );
  if (profileRefresh !== undefined && (profileRefresh < 60 || profileRefresh > 7 * 86400)) {
    problems.push('spec.fakeTLS.profile.refreshInterval: between 1m and 168h');
  }
  const pdb = spec.podDisruptionBudget;
  const shared = spec.sharedState;
  if (shared?.managed && shared.redis?.urlSecretRef) {
    problems.push('spec.sharedState: give either redis.urlSecretRef or managed: true, not both');
  }
  const sharedState: SharedStateSource = shared?.redis?.urlSecretRef
    ? {
        kind: 'external',
        ref: { name: shared.redis.urlSecretRef.name, key: shared.redis.urlSecretRef.key ?? 'url' },
      }
    : shared?.managed
      ? {
          kind: 'managed',
          image: shared.image ?? MANAGED_REDIS_DEFAULTS.image,
          storageSize: shared.storageSize ?? MANAGED_REDIS_DEFAULTS.storageSize,
        }
      : { kind: 'none' };
  if (spec.quotaTimeZone !== undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: spec.quotaTimeZone });
    } catch {
      problems.push(`spec.quotaTimeZone: "${spec.quotaTimeZone}" is not a time zone such as Europe/Berlin`);
    }
  }
  const replicas = spec.replicas ?? DEFAULTS.replicas;
  const quotas = users.some((u) => u.quota !== undefined);
  if (problems.length > 0) throw new SpecError(problems);

  const retain = (secretsSpec.retentionPolicy ?? 'Retain') === 'Retain';
  return {
    sharedState,
    replayFallback: shared?.replayFallback,
    limitsFallback: shared?.limitsFallback,
    quotaTimeZone: spec.quotaTimeZone,
    dataVolume: quotas && replicas === 1 && sharedState.kind === 'none' ? 'pvc' : 'emptyDir',
    quotasPerPod: quotas && replicas > 1 && sharedState.kind === 'none',
    replicas,
    paused: spec.paused ?? false,
    image,
    imagePullPolicy: spec.imagePullPolicy,
    imagePullSecrets: spec.imagePullSecrets ?? [],
    workers: spec.workers ?? DEFAULTS.workers,
    maxConnections: spec.maxConnections ?? DEFAULTS.maxConnections,
    port,
    listenPort: hostNetwork ? port : (spec.containerPort ?? DEFAULTS.containerPort),
    hostNetwork,
    modes,
    logLevel: spec.logLevel ?? 'info',
    secrets: secretsSpec.existingSecretName
      ? {
          kind: 'existing',
          name: secretsSpec.existingSecretName,
          key: secretsSpec.existingSecretKey ?? DEFAULTS.secretsKey,
          retain,
        }
      : { kind: 'generated', count, retain },
    users,
    userSecrets: spec.usersSecretName
      ? { kind: 'existing', name: spec.usersSecretName }
      : { kind: 'generated' },
    adTag,
    upstreamMode,
    effectiveMode: upstreamMode === 'auto' ? (adTag || userTags ? 'middle' : 'direct') : upstreamMode,
    preferIPv6: spec.upstream?.preferIPv6,
    dcAddresses: spec.upstream?.dcAddresses ?? [],
    telegramConfig: {
      proxySecretURL: spec.telegramConfig?.proxySecretURL,
      proxyConfigURL: spec.telegramConfig?.proxyConfigURL,
      refreshIntervalSeconds: refresh,
    },
    fakeTLS: {
      domain,
      unknownSNI: spec.fakeTLS?.unknownSNI,
      mask: { ...spec.fakeTLS?.mask, enabled: spec.fakeTLS?.mask?.enabled },
      profile: { mode: spec.fakeTLS?.profile?.mode ?? 'auto', refreshIntervalSeconds: profileRefresh },
    },
    proxyProtocol: spec.proxyProtocol ?? 'off',
    publicAddress: {
      host: spec.publicAddress?.host,
      port: spec.publicAddress?.port ?? port,
      externalIP,
      externalIPSource: resolveExternalIPSource(spec, serviceType, hostNetwork),
    },
    service: {
      type: serviceType,
      annotations: spec.service?.annotations ?? {},
      labels: spec.service?.labels ?? {},
      externalTrafficPolicy: spec.service?.externalTrafficPolicy ?? 'Local',
      loadBalancerClass: spec.service?.loadBalancerClass,
      loadBalancerSourceRanges: spec.service?.loadBalancerSourceRanges,
      nodePort: spec.service?.nodePort,
    },
    statsAllowCIDRs: spec.stats?.allowCIDRs,
    metrics: {
      enabled: spec.metrics?.enabled ?? true,
      port: spec.metrics?.port ?? DEFAULTS.metricsPort,
      serviceMonitor: {
        enabled: spec.metrics?.serviceMonitor?.enabled ?? false,
        interval: spec.metrics?.serviceMonitor?.interval,
        labels: spec.metrics?.serviceMonitor?.labels ?? {},
      },
    },
    timeouts: {
      handshakeSeconds: spec.timeouts?.handshakeSeconds,
      idleSeconds: spec.timeouts?.idleSeconds,
      drainSeconds,
    },
    restart,
    podTemplate: spec.podTemplate ?? {},
    podDisruptionBudget: pdb?.enabled
      ? pdb.minAvailable !== undefined
        ? { minAvailable: pdb.minAvailable }
        : { maxUnavailable: pdb.maxUnavailable ?? 1 }
      : undefined,
    terminationGracePeriodSeconds:
      spec.terminationGracePeriodSeconds ?? drainSeconds + DEFAULTS.graceMarginSeconds,
  };
}
