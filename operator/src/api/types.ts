// The MTProxy resource as TypeScript sees it: the same shape as crds/mtkube.dev_mtproxies.yaml.
// Every spec field is optional here because the API server only defaults the fields of objects the
// user wrote; api/defaults.ts turns a spec into the fully defaulted one the renderers read.

export const GROUP = 'mtkube.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'MTProxy';
export const PLURAL = 'mtproxies';

export type Mode = 'classic' | 'secure' | 'tls';
export type UpstreamMode = 'auto' | 'direct' | 'middle';
export type ExternalIPSource = 'Auto' | 'Explicit' | 'LoadBalancer' | 'NodeHostIP' | 'Detect';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer';
export type IntOrString = number | string;

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface SecretKeyRef {
  name: string;
  key?: string;
}

/** One named user: its own secret (never in the CR) and limits; rendered into the proxy's users file. */
export interface MTProxyUser {
  name: string;
  enabled?: boolean;
  maxConnections?: number;
  maxUniqueIPs?: number;
  uniqueIPWindowSeconds?: number;
  /** Bytes, or a string such as "50GiB" or "500 MB". */
  quota?: IntOrString;
  /** When the quota's usage starts again from zero (in spec.quotaTimeZone); default none. */
  quotaPeriod?: 'none' | 'daily' | 'weekly' | 'monthly';
  /** RFC 3339 date-time. */
  expires?: string;
  adTag?: string;
  /** Raise it to have a new secret generated for this user (generated secrets only). */
  secretRotation?: number;
}

export interface MTProxySpec {
  replicas?: number;
  paused?: boolean;
  image?: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  imagePullSecrets?: { name: string }[];
  workers?: number;
  maxConnections?: number;
  port?: number;
  containerPort?: number;
  modes?: Mode[];
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  secrets?: {
    count?: number;
    existingSecretName?: string;
    existingSecretKey?: string;
    retentionPolicy?: 'Retain' | 'Delete';
  };
  adTag?: { value?: string; secretKeyRef?: SecretKeyRef };
  users?: MTProxyUser[];
  /** A Secret you manage with one key per user name, each 32 hex digits; otherwise generated. */
  usersSecretName?: string;
  upstream?: {
    mode?: UpstreamMode;
    preferIPv6?: boolean;
    dcAddresses?: { dc: number; address: string }[];
  };
  telegramConfig?: { proxySecretURL?: string; proxyConfigURL?: string; refreshInterval?: string };
  fakeTLS?: {
    domain?: string;
    unknownSNI?: 'mask' | 'drop' | 'accept';
    mask?: { enabled?: boolean; host?: string; port?: number };
    /** The site profile each pod measures (FAKE_TLS_PROFILE, FAKE_TLS_PROFILE_REFRESH). */
    profile?: { mode?: 'auto' | 'off'; refreshInterval?: string };
  };
  proxyProtocol?: 'off' | 'v1' | 'v2' | 'auto';
  publicAddress?: { host?: string; port?: number; externalIP?: string; externalIPSource?: ExternalIPSource };
  service?: {
    type?: ServiceType;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    externalTrafficPolicy?: 'Cluster' | 'Local';
    loadBalancerClass?: string;
    loadBalancerSourceRanges?: string[];
    nodePort?: number;
    hostNetwork?: boolean;
  };
  stats?: { allowCIDRs?: string[] };
  metrics?: {
    enabled?: boolean;
    port?: number;
    serviceMonitor?: { enabled?: boolean; interval?: string; labels?: Record<string, string> };
  };
  timeouts?: { handshakeSeconds?: number; idleSeconds?: number; drainSeconds?: number };
  restart?: { enabled?: boolean; schedule?: string; timeZone?: string; jitter?: string };
  podTemplate?: {
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resources?: { limits?: Record<string, IntOrString>; requests?: Record<string, IntOrString> };
    nodeSelector?: Record<string, string>;
    tolerations?: Record<string, unknown>[];
    affinity?: Record<string, unknown>;
    topologySpreadConstraints?: Record<string, unknown>[];
    priorityClassName?: string;
    serviceAccountName?: string;
  };
  podDisruptionBudget?: { enabled?: boolean; maxUnavailable?: IntOrString; minAvailable?: IntOrString };
  terminationGracePeriodSeconds?: number;
  /** IANA time zone in which daily, weekly and monthly quota periods start (default UTC). */
  quotaTimeZone?: string;
  /** The store the replicas share replays, limits and quotas through (proxy STATE_URL). */
  sharedState?: {
    /** A Redis (or Valkey) you run: a Secret key holding redis://[user:password@]host:port/db. */
    redis?: { urlSecretRef?: SecretKeyRef };
    /** Run one Redis for this MTProxy: a Deployment with a PVC and a Service, password generated. */
    managed?: boolean;
    /** Image of the managed Redis (default redis:7-alpine). */
    image?: string;
    /** Size of the managed Redis's volume (default 1Gi). */
    storageSize?: string;
    /** Store down: local (default) or refuse. */
    replayFallback?: 'local' | 'refuse';
    /** Store down: share (default) or refuse. */
    limitsFallback?: 'share' | 'refuse';
  };
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** metav1.Condition. */
export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface Endpoint {
  host: string;
  port: number;
}

/** What status says about a user: never its secret. */
export interface UserStatus {
  name: string;
  enabled: boolean;
  /** The rotation the secret in use was generated for (generated secrets only). */
  secretRotation?: number;
  /** A short hash of the user's secret, to notice a change without seeing it. */
  fingerprint?: string;
  /** Whether the user is in the users file the proxy reads (false: its secret is missing). */
  served: boolean;
}

export interface MTProxyStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  replicas?: number;
  readyReplicas?: number;
  updatedReplicas?: number;
  selector?: string;
  mode?: 'direct' | 'middle';
  image?: string;
  secretName?: string;
  linksSecretName?: string;
  secretsCount?: number;
  secretsFingerprint?: string;
  usersSecretName?: string;
  users?: UserStatus[];
  endpoints?: Endpoint[];
  externalIP?: string;
  lastRestartTime?: string;
  nextRestartTime?: string;
  restartSchedule?: string;
}

export interface MTProxy {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta & { name: string; namespace: string };
  spec?: MTProxySpec;
  status?: MTProxyStatus;
}

/** The condition types the operator writes. */
export const ConditionType = {
  Ready: 'Ready',
  Progressing: 'Progressing',
  Degraded: 'Degraded',
  SecretsReady: 'SecretsReady',
  ExternalAddressResolved: 'ExternalAddressResolved',
  AdTagActive: 'AdTagActive',
  UsersReady: 'UsersReady',
  /** spec.sharedState's store is there (or: quotas are counted per pod for want of one). */
  SharedStateReady: 'SharedStateReady',
  FakeTLSProfile: 'FakeTLSProfile',
} as const;
