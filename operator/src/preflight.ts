// Before watching anything: is the CRD installed, and may we do what we need? Each failure comes
// back as one sentence that says how to fix it, instead of a stream of 404s and 403s from watches.
import { API_VERSION, GROUP, PLURAL } from './api/types.js';
import { isNotFound, type KubeClient } from './controller/kube-client.js';

export interface Permission {
  readonly group: string;
  readonly resource: string;
  readonly verb: string;
  readonly subresource?: string;
  /** undefined: cluster-wide. */
  readonly namespace?: string | undefined;
}

/** What the operator does, per watched namespace (or cluster-wide). */
export function requiredPermissions(namespace: string | undefined, leaseNamespace?: string): Permission[] {
  const perms: Permission[] = [];
  const add = (group: string, resource: string, verbs: string[], subresource?: string, ns = namespace) => {
    for (const verb of verbs)
      perms.push({ group, resource, verb, namespace: ns, ...(subresource ? { subresource } : {}) });
  };
  add(GROUP, PLURAL, ['get', 'list', 'watch']);
  add(GROUP, PLURAL, ['patch'], 'status');
  add('apps', 'deployments', ['get', 'list', 'watch', 'create', 'patch']);
  add('', 'services', ['get', 'list', 'watch', 'create', 'patch', 'delete']);
  add('', 'secrets', ['get', 'list', 'watch', 'create', 'patch']);
  add('', 'events', ['create', 'patch']);
  add('policy', 'poddisruptionbudgets', ['create', 'patch', 'delete']);
  if (leaseNamespace !== undefined) {
    add('coordination.k8s.io', 'leases', ['get', 'create', 'update'], undefined, leaseNamespace);
  }
  return perms;
}

export interface PreflightResult {
  readonly ok: boolean;
  readonly problems: readonly string[];
}

async function allowed(client: KubeClient, p: Permission): Promise<boolean> {
  const review = await client.request<{ status?: { allowed?: boolean } }>(
    'POST',
    '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
    {
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: {
          resourceAttributes: {
            group: p.group,
            resource: p.resource,
            verb: p.verb,
            ...(p.subresource ? { subresource: p.subresource } : {}),
            ...(p.namespace ? { namespace: p.namespace } : {}),
          },
        },
      },
    },
  );
  return review.status?.allowed === true;
}

export function describePermission(p: Permission): string {
  const resource = `${p.resource}${p.subresource ? `/${p.subresource}` : ''}${p.group ? `.${p.group}` : ''}`;
  return `${p.verb} ${resource}${p.namespace ? ` in ${p.namespace}` : ' (all namespaces)'}`;
}

export async function preflight(
  client: KubeClient,
  namespaces: readonly string[],
  leaseNamespace: string | undefined,
): Promise<PreflightResult> {
  const problems: string[] = [];
  let crd = false;
  try {
    crd = await client.servesApi(API_VERSION, 'MTProxy');
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  if (!crd) {
    problems.push(
      `the API server does not serve ${PLURAL}.${GROUP}/${API_VERSION.split('/')[1]}: install the CRD with ` +
        '`kubectl apply -f crds/mtkube.dev_mtproxies.yaml`',
    );
  }
  const scopes = namespaces.length > 0 ? [...namespaces] : [undefined];
  const perms = scopes.flatMap((ns, i) => requiredPermissions(ns, i === 0 ? leaseNamespace : undefined));
  const results = await Promise.all(perms.map(async (p) => [p, await allowed(client, p)] as const));
  const missing = results.filter(([, ok]) => !ok).map(([p]) => describePermission(p));
  if (missing.length > 0) {
    problems.push(
      `the operator's account may not: ${missing.join(', ')}; apply operator/deploy/rbac.yaml ` +
        '(or the chart) and run the operator as its ServiceAccount',
    );
  }
  return { ok: problems.length === 0, problems };
}
