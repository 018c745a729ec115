// Names, labels and owner references shared by every child of an MTProxy.
import { API_VERSION, KIND, type MTProxy, type OwnerReference } from '../api/types.js';

export const FIELD_MANAGER = 'mtkube-operator';
export const MANAGED_BY = 'mtkube-operator';

export const LABELS = {
  name: 'app.kubernetes.io/name',
  instance: 'app.kubernetes.io/instance',
  component: 'app.kubernetes.io/component',
  partOf: 'app.kubernetes.io/part-of',
  managedBy: 'app.kubernetes.io/managed-by',
  /** Which MTProxy a child (or a retained Secret) belongs to; informers select on it. */
  mtproxy: 'mtkube.dev/mtproxy',
} as const;

export const ANNOTATIONS = {
  /**
   * Hash of the secrets and ad tag the pods were started with; a change rolls the pods. The users
   * file is not in it: the proxy reloads that one live.
   */
  secretsChecksum: 'mtkube.dev/secrets-checksum',
  /** Set by the daily roll, like kubectl's restartedAt, but our own so the two never fight. */
  restartedAt: 'mtkube.dev/restartedAt',
  /** On the generated Secret: Retain or Delete, as the spec said when it was written. */
  retentionPolicy: 'mtkube.dev/retention-policy',
} as const;

export const APP_NAME = 'mtproxy';

export const childNames = (name: string) => ({
  deployment: name,
  service: name,
  metricsService: `${name}-metrics`,
  secrets: `${name}-secrets`,
  links: `${name}-links`,
  users: `${name}-users`,
  pdb: name,
  serviceMonitor: name,
});

/** The immutable pair Deployment selectors and Services use. */
export function selectorLabels(mtp: MTProxy): Record<string, string> {
  return { [LABELS.name]: APP_NAME, [LABELS.instance]: mtp.metadata.name };
}

export function selectorString(mtp: MTProxy): string {
  return Object.entries(selectorLabels(mtp))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

export function commonLabels(mtp: MTProxy, component: string): Record<string, string> {
  return {
    ...selectorLabels(mtp),
    [LABELS.component]: component,
    [LABELS.partOf]: 'mtkube',
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.mtproxy]: mtp.metadata.name,
  };
}

export function ownerReference(mtp: MTProxy): OwnerReference {
  if (!mtp.metadata.uid) throw new Error(`MTProxy ${mtp.metadata.name} has no uid yet`);
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: mtp.metadata.name,
    uid: mtp.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** metadata for a namespaced child: name, namespace, labels, owner. */
export function childMeta(
  mtp: MTProxy,
  name: string,
  component: string,
  extra: { labels?: Record<string, string>; annotations?: Record<string, string>; owned?: boolean } = {},
) {
  const meta: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
  } = {
    name,
    namespace: mtp.metadata.namespace,
    labels: { ...extra.labels, ...commonLabels(mtp, component) },
  };
  if (extra.annotations && Object.keys(extra.annotations).length > 0) meta.annotations = extra.annotations;
  if (extra.owned ?? true) meta.ownerReferences = [ownerReference(mtp)];
  return meta;
}
