// What the cluster administrator lets an MTProxy author ask for. Whoever may create an MTProxy gets
// a Deployment made by the operator; without a policy that would pass on the operator's rights
// (any image, host networking, any ServiceAccount of the namespace). Set by operator flags
// (ALLOWED_IMAGES, ALLOW_HOST_NETWORK, PROXY_SERVICE_ACCOUNT) or the chart's `policy` values.
import { type ProxySettings, SpecError } from './defaults.js';

export interface ProxyPolicy {
  /**
   * Images an MTProxy may run: `*` (any), `repo/name*` (a prefix), or `repo/name` (any tag or
   * digest of that repository), or an exact reference. Default: the repository of the operator's
   * default proxy image.
   */
  readonly allowedImages: readonly string[];
  readonly allowHostNetwork: boolean;
  /** Every proxy pod runs as this ServiceAccount; spec.podTemplate.serviceAccountName must be empty or the same. */
  readonly serviceAccount: string | undefined;
  /** Without a pinned one: whether spec.podTemplate.serviceAccountName may name one (default no). */
  readonly allowServiceAccountFromSpec: boolean;
}

/** The default: the default image's repository only, no host network, no ServiceAccount from the spec. */
export function defaultPolicy(defaultImage: string): ProxyPolicy {
  return {
    allowedImages: [imageRepository(defaultImage)],
    allowHostNetwork: false,
    serviceAccount: undefined,
    allowServiceAccountFromSpec: false,
  };
}

/** `ghcr.io/x/mtproxy:1.0` -> `ghcr.io/x/mtproxy` (a registry port is not a tag). */
export function imageRepository(image: string): string {
  const noDigest = image.split('@')[0] ?? image;
  const colon = noDigest.lastIndexOf(':');
  return colon > noDigest.lastIndexOf('/') ? noDigest.slice(0, colon) : noDigest;
}

export function imageAllowed(image: string, allowed: readonly string[]): boolean {
  return allowed.some((entry) => {
    if (entry === '*') return true;
    if (entry.endsWith('*')) return image.startsWith(entry.slice(0, -1));
    return image === entry || imageRepository(image) === entry;
  });
}

/** The problems of a spec under the policy, each naming the field and the operator setting. */
export function policyProblems(settings: ProxySettings, policy: ProxyPolicy): string[] {
  const problems: string[] = [];
  if (!imageAllowed(settings.image, policy.allowedImages)) {
    problems.push(
      `spec.image: ${settings.image} is not among the images this operator runs (ALLOWED_IMAGES: ${policy.allowedImages.join(', ')})`,
    );
  }
  if (settings.hostNetwork && !policy.allowHostNetwork) {
    problems.push(
      'spec.service.hostNetwork: this operator does not run proxies on the host network (ALLOW_HOST_NETWORK)',
    );
  }
  const asked = settings.podTemplate.serviceAccountName;
  const mayChoose = !policy.serviceAccount && policy.allowServiceAccountFromSpec;
  if (asked !== undefined && asked !== policy.serviceAccount && !mayChoose) {
    problems.push(
      policy.serviceAccount
        ? `spec.podTemplate.serviceAccountName: proxy pods run as ${policy.serviceAccount} (PROXY_SERVICE_ACCOUNT); leave it empty`
        : 'spec.podTemplate.serviceAccountName: this operator does not let an MTProxy choose a ServiceAccount (PROXY_SERVICE_ACCOUNT pins one)',
    );
  }
  return problems;
}

/** The settings with what the policy imposes (the pinned ServiceAccount). */
export function withPolicy(settings: ProxySettings, policy: ProxyPolicy): ProxySettings {
  if (!policy.serviceAccount) return settings;
  return { ...settings, podTemplate: { ...settings.podTemplate, serviceAccountName: policy.serviceAccount } };
}

/** A policy that allows everything (tests that are not about the policy, single-tenant clusters). */
export const PERMISSIVE_POLICY: ProxyPolicy = {
  allowedImages: ['*'],
  allowHostNetwork: true,
  serviceAccount: undefined,
  allowServiceAccountFromSpec: true,
};

/** A spec that asks for what the policy forbids; shown as reason NotAllowed. */
export class PolicyError extends SpecError {
  override readonly code = 'ERR_MTPROXY_NOT_ALLOWED';
  constructor(problems: readonly string[]) {
    super(problems);
    this.name = 'PolicyError';
  }
}
