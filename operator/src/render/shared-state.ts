// spec.sharedState -> what the replicas share replays, limits and quotas through. External: the
// proxy reads STATE_URL from the Secret key you name. Managed: one Redis for this MTProxy, a
// Deployment (one replica, Recreate: its volume is ReadWriteOnce) with a PersistentVolumeClaim and
// a ClusterIP Service, hardened like the proxy pods (non-root, read-only root filesystem, no
// capabilities, RuntimeDefault seccomp, no service account token) and protected by a generated
// password kept in a Secret whose `url` key the proxies read. Also the PVC that keeps /data of a
// single pod with quotas and no store. Pure: the password is an input, never made here.

import { MANAGED_REDIS_DEFAULTS, type ProxySettings } from '../api/defaults.js';
import type { MTProxy } from '../api/types.js';
import { APP_NAME, childMeta, LABELS } from './meta.js';

export const REDIS_PORT = 6379;
/** The user the managed Redis runs as (the official image's redis user). */
export const REDIS_UID = 999;

export const stateNames = (name: string) => ({
  secret: `${name}-state`,
  redis: `${name}-redis`,
  redisData: `${name}-redis-data`,
  proxyData: `${name}-data`,
});

/** Labels of the Redis pods: never the proxy's selector pair, so no proxy Service selects them. */
function redisLabels(mtp: MTProxy): Record<string, string> {
  return { [LABELS.name]: `${APP_NAME}-redis`, [LABELS.instance]: mtp.metadata.name };
}

function meta(mtp: MTProxy, name: string) {
  const m = childMeta(mtp, name, 'state');
  return { ...m, labels: { ...m.labels, ...redisLabels(mtp) } };
}

/** Where the proxies find the store, or undefined without one. */
export function stateUrlRef(mtp: MTProxy, s: ProxySettings): { name: string; key: string } | undefined {
  switch (s.sharedState.kind) {
    case 'none':
      return undefined;
    case 'external':
      return { ...s.sharedState.ref };
    case 'managed':
      return { name: stateNames(mtp.metadata.name).secret, key: MANAGED_REDIS_DEFAULTS.urlKey };
  }
}

export function renderStateSecret(mtp: MTProxy, password: string) {
  const names = stateNames(mtp.metadata.name);
  const host = `${names.redis}.${mtp.metadata.namespace}.svc`;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(mtp, names.secret),
    type: 'Opaque',
    stringData: {
      password,
      [MANAGED_REDIS_DEFAULTS.urlKey]: `redis://:${password}@${host}:${REDIS_PORT}/0`,
    },
  };
}

export function renderRedisClaim(mtp: MTProxy, s: ProxySettings) {
  if (s.sharedState.kind !== 'managed') return undefined;
  return claim(mtp, stateNames(mtp.metadata.name).redisData, s.sharedState.storageSize);
}

/** /data of a single proxy pod with quotas and no store, so a replaced pod keeps the usage. */
export function renderProxyDataClaim(mtp: MTProxy, s: ProxySettings) {
  if (s.dataVolume !== 'pvc') return undefined;
  return claim(mtp, stateNames(mtp.metadata.name).proxyData, '256Mi');
}

function claim(mtp: MTProxy, name: string, size: string) {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: childMeta(mtp, name, 'data'),
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } } },
  };
}

export function renderRedisService(mtp: MTProxy, s: ProxySettings) {
  if (s.sharedState.kind !== 'managed') return undefined;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(mtp, stateNames(mtp.metadata.name).redis),
    spec: {
      type: 'ClusterIP',
      selector: redisLabels(mtp),
      ports: [{ name: 'redis', port: REDIS_PORT, targetPort: 'redis', protocol: 'TCP' }],
    },
  };
}

export function renderRedisDeployment(mtp: MTProxy, s: ProxySettings) {
  if (s.sharedState.kind !== 'managed') return undefined;
  const names = stateNames(mtp.metadata.name);
  const container = {
    name: 'redis',
    image: s.sharedState.image,
    // $(REDIS_PASSWORD) is expanded by the kubelet; the password is never in the pod spec.
    command: ['redis-server'],
    args: [
      '--port',
      String(REDIS_PORT),
      '--requirepass',
      '$(REDIS_PASSWORD)',
      '--dir',
      '/data',
      '--appendonly',
      'yes',
      '--protected-mode',
      'yes',
    ],
    env: [{ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: names.secret, key: 'password' } } }],
    ports: [{ name: 'redis', containerPort: REDIS_PORT, protocol: 'TCP' }],
    readinessProbe: { tcpSocket: { port: 'redis' }, periodSeconds: 5 },
    livenessProbe: { tcpSocket: { port: 'redis' }, periodSeconds: 10, failureThreshold: 6 },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: [
      { name: 'data', mountPath: '/data' },
      { name: 'tmp', mountPath: '/tmp' },
    ],
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(mtp, names.redis),
    spec: {
      replicas: 1,
      selector: { matchLabels: redisLabels(mtp) },
      // The volume is ReadWriteOnce: the old pod must let go of it before the new one starts.
      strategy: { type: 'Recreate' },
      template: {
        metadata: { labels: meta(mtp, names.redis).labels },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: REDIS_UID,
            runAsGroup: REDIS_UID,
            fsGroup: REDIS_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [container],
          volumes: [
            { name: 'data', persistentVolumeClaim: { claimName: names.redisData } },
            { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
          ],
        },
      },
    },
  };
}
