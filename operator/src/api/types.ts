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
} as const;
