// MTProxy -> the proxy Deployment. Hardened by default (non-root, read-only root filesystem, no
// capabilities, RuntimeDefault seccomp), rolled without losing capacity (maxUnavailable 0), and
// stopped gently (a preStop pause, then DRAIN_TIMEOUT inside terminationGracePeriodSeconds).
//
// Port 443 without root: the proxy listens on an unprivileged containerPort (8443) and the
// Service maps spec.port to it. With hostNetwork the proxy must listen on spec.port itself, and
// below 1024 that takes CAP_NET_BIND_SERVICE. Listing it in capabilities.add is not enough for a
// non-root user: Kubernetes grants no ambient capabilities, so a process of uid 10001 loses it at
// exec and bind() fails with EACCES (a crash loop seen on a real kubelet). The namespaced sysctl
// net.ipv4.ip_unprivileged_port_start is refused with hostNetwork (it would change the node).
// So in that one case the container runs as uid 0 holding NET_BIND_SERVICE and nothing else: no
// privilege escalation, read-only root filesystem, seccomp, every other capability dropped.
import type { ProxySettings } from '../api/defaults.js';
import { DEFAULTS } from '../api/defaults.js';
import type { MTProxy } from '../api/types.js';
import { DATA_DIR, type EnvInputs, renderEnv, USERS_DIR, USERS_FILE_KEY } from './env.js';
import { ANNOTATIONS, childMeta, commonLabels, selectorLabels } from './meta.js';
import { containerResources } from './resources.js';
import { stateNames, stateUrlRef } from './shared-state.js';

export const CONTAINER_NAME = 'proxy';
/** The user the proxy runs as; the image must not need another. */
export const PROXY_UID = 10001;

export interface DeploymentInputs extends EnvInputs {
  readonly secretsChecksum: string;
  /** Value of the restart annotation (the last daily roll), if there was one. */
  readonly restartedAt: string | undefined;
}

function antiAffinityPerNode(mtp: MTProxy) {
  return {
    podAntiAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        { labelSelector: { matchLabels: selectorLabels(mtp) }, topologyKey: 'kubernetes.io/hostname' },
      ],
    },
  };
}

export function renderDeployment(mtp: MTProxy, name: string, s: ProxySettings, inputs: DeploymentInputs) {
  const pod = s.podTemplate;
  const annotations: Record<string, string> = {
    ...pod.annotations,
    [ANNOTATIONS.secretsChecksum]: inputs.secretsChecksum,
  };
  if (inputs.restartedAt) annotations[ANNOTATIONS.restartedAt] = inputs.restartedAt;

  const bindsPrivilegedPort = s.hostNetwork && s.listenPort < 1024;
  const addCaps = bindsPrivilegedPort ? ['NET_BIND_SERVICE'] : [];
  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: 'metrics', scheme: 'HTTP' },
    periodSeconds,
    failureThreshold,
    timeoutSeconds: 2,
  });

  const container: Record<string, unknown> = {
    name: CONTAINER_NAME,
    image: s.image,
    env: renderEnv(s, { ...inputs, stateUrlRef: inputs.stateUrlRef ?? stateUrlRef(mtp, s) }),
    ports: [
      {
        name: 'client',
        containerPort: s.listenPort,
        protocol: 'TCP',
        ...(s.hostNetwork ? { hostPort: s.listenPort } : {}),
      },
      { name: 'metrics', containerPort: s.metrics.port, protocol: 'TCP' },
    ],
    // Startup allows a minute for fetching Telegram's config; then liveness and readiness.
    startupProbe: probe('/healthz', 2, 30),
    livenessProbe: probe('/healthz', 10, 3),
    readinessProbe: probe('/readyz', 5, 2),
    lifecycle: { preStop: { sleep: { seconds: DEFAULTS.preStopSleepSeconds } } },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      ...(bindsPrivilegedPort ? { runAsNonRoot: false, runAsUser: 0 } : { runAsNonRoot: true }),
      capabilities: addCaps.length > 0 ? { drop: ['ALL'], add: addCaps } : { drop: ['ALL'] },
    },
    volumeMounts: [
      { name: 'data', mountPath: DATA_DIR },
      { name: 'tmp', mountPath: '/tmp' },
    ],
  };
  const volumes: Record<string, unknown>[] = [
    // The replay cache file is 12 bytes per remembered handshake (48 MiB at REPLAY_CACHE_SIZE's
    // default); one pod with quotas and no store keeps its usage on a claim instead (shared-state.ts).
    s.dataVolume === 'pvc'
      ? { name: 'data', persistentVolumeClaim: { claimName: stateNames(mtp.metadata.name).proxyData } }
      : { name: 'data', emptyDir: { sizeLimit: '128Mi' } },
    { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
  ];
  if (inputs.usersSecretName) {
    // A directory mount, never subPath: the kubelet updates it in place and the proxy reloads.
    (container.volumeMounts as Record<string, unknown>[]).push({
      name: 'users',
      mountPath: USERS_DIR,
      readOnly: true,
    });
    volumes.push({
      name: 'users',
      secret: {
        secretName: inputs.usersSecretName,
        items: [{ key: USERS_FILE_KEY, path: USERS_FILE_KEY }],
        defaultMode: 0o440,
      },
    });
  }
  if (s.imagePullPolicy) container.imagePullPolicy = s.imagePullPolicy;
  container.resources = containerResources(s.workers, s.maxConnections, pod.resources);

  const podSpec: Record<string, unknown> = {
    // The proxy never talks to the Kubernetes API.
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    hostNetwork: s.hostNetwork,
    dnsPolicy: s.hostNetwork ? 'ClusterFirstWithHostNet' : 'ClusterFirst',
    terminationGracePeriodSeconds: s.terminationGracePeriodSeconds,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: PROXY_UID,
      runAsGroup: PROXY_UID,
      fsGroup: PROXY_UID,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [container],
    volumes,
  };
  if (pod.serviceAccountName) podSpec.serviceAccountName = pod.serviceAccountName;
  if (s.imagePullSecrets.length > 0) podSpec.imagePullSecrets = s.imagePullSecrets;
  if (pod.nodeSelector) podSpec.nodeSelector = pod.nodeSelector;
  if (pod.tolerations) podSpec.tolerations = pod.tolerations;
  if (pod.priorityClassName) podSpec.priorityClassName = pod.priorityClassName;
  if (pod.topologySpreadConstraints) podSpec.topologySpreadConstraints = pod.topologySpreadConstraints;
  // With hostNetwork two pods of one proxy cannot share a node (same port).
  const affinity = pod.affinity ?? (s.hostNetwork ? antiAffinityPerNode(mtp) : undefined);
  if (affinity) podSpec.affinity = affinity;

  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: childMeta(mtp, name, 'proxy'),
    spec: {
      replicas: s.replicas,
      paused: s.paused,
      selector: { matchLabels: selectorLabels(mtp) },
      // A ReadWriteOnce /data claim must be let go by the old pod before the new one mounts it.
      strategy:
        s.dataVolume === 'pvc'
          ? { type: 'Recreate' }
          : {
              type: 'RollingUpdate',
              // A new pod first, then an old one goes; with hostNetwork the port on the node must be
              // freed first, so one old pod goes before its replacement starts.
              rollingUpdate: s.hostNetwork
                ? { maxSurge: 0, maxUnavailable: 1 }
                : { maxSurge: 1, maxUnavailable: 0 },
            },
      template: {
        metadata: { labels: { ...pod.labels, ...commonLabels(mtp, 'proxy') }, annotations },
        spec: podSpec,
      },
    },
  };
}
