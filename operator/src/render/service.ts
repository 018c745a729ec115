// MTProxy -> its Services (clients, metrics), PodDisruptionBudget and ServiceMonitor.
import type { ProxySettings } from '../api/defaults.js';
import type { MTProxy } from '../api/types.js';
import { childMeta, LABELS, selectorLabels } from './meta.js';

export function renderClientService(mtp: MTProxy, name: string, s: ProxySettings) {
  const svc = s.service;
  const port: Record<string, unknown> = {
    name: 'client',
    port: s.port,
    targetPort: 'client',
    protocol: 'TCP',
  };
  if (svc.nodePort !== undefined && svc.type !== 'ClusterIP') port.nodePort = svc.nodePort;
  const spec: Record<string, unknown> = {
    type: svc.type,
    selector: selectorLabels(mtp),
    ports: [port],
  };
  if (svc.type !== 'ClusterIP') spec.externalTrafficPolicy = svc.externalTrafficPolicy;
  if (svc.type === 'LoadBalancer') {
    if (svc.loadBalancerClass) spec.loadBalancerClass = svc.loadBalancerClass;
    if (svc.loadBalancerSourceRanges) spec.loadBalancerSourceRanges = svc.loadBalancerSourceRanges;
  }
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(mtp, name, 'proxy', {
      labels: { ...svc.labels },
      annotations: { ...svc.annotations },
    }),
    spec,
  };
}

export function renderMetricsService(mtp: MTProxy, name: string, s: ProxySettings) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMeta(mtp, name, 'metrics'),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(mtp),
      ports: [{ name: 'metrics', port: s.metrics.port, targetPort: 'metrics', protocol: 'TCP' }],
    },
  };
}

export function renderPodDisruptionBudget(mtp: MTProxy, name: string, s: ProxySettings) {
  if (!s.podDisruptionBudget) return undefined;
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: childMeta(mtp, name, 'proxy'),
    spec: { selector: { matchLabels: selectorLabels(mtp) }, ...s.podDisruptionBudget },
  };
}

export const SERVICE_MONITOR_API = 'monitoring.coreos.com/v1';

export function renderServiceMonitor(mtp: MTProxy, name: string, s: ProxySettings) {
  const sm = s.metrics.serviceMonitor;
  if (!s.metrics.enabled || !sm.enabled) return undefined;
  const endpoint: Record<string, unknown> = { port: 'metrics', path: '/metrics' };
  if (sm.interval) endpoint.interval = sm.interval;
  return {
    apiVersion: SERVICE_MONITOR_API,
    kind: 'ServiceMonitor',
    metadata: childMeta(mtp, name, 'metrics', { labels: { ...sm.labels } }),
    spec: {
      selector: { matchLabels: { ...selectorLabels(mtp), [LABELS.component]: 'metrics' } },
      endpoints: [endpoint],
    },
  };
}
