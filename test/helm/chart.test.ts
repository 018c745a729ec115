// The chart before it is installed: what `helm lint` and `helm template` say for the value sets a
// user would pick, what the real API server says about the result (server-side dry run, in
// namespaces that enforce the restricted Pod Security Standard), and what the schema refuses.
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import type { ControlPlane } from '../cluster/control-plane.js';
import { deleteNamespace, getClusterOrSkip } from '../cluster/shared-cluster.js';
import {
  chartDir,
  containerEnv,
  crdPath,
  createRestrictedNamespace,
  findManifest,
  helmTemplate,
  installCrd,
  type Manifest,
  ok,
  parseManifests,
  repoRoot,
  type Values,
  ValuesFiles,
} from './support.js';

const RELEASE = 'tpl';
const OPERATOR = 'tpl-mtkube-operator';

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

function rulesOf(docs: readonly Manifest[], kind: string, name: string): Rule[] {
  const m = findManifest(docs, kind, name);
  expect(m, `${kind} ${name}`).to.not.equal(undefined);
  return m!.rules as Rule[];
}

function basicExampleSpec(): Values {
  const [example] = parseManifests(readFileSync(join(repoRoot, 'crds/examples/basic.yaml'), 'utf8'));
  return example!.spec as Values;
}

interface DeploymentSpec {
  replicas: number;
  template: {
    metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
    spec: {
      serviceAccountName: string;
      securityContext: Record<string, unknown>;
      containers: {
        image: string;
        ports: { name: string; containerPort: number }[];
        livenessProbe: { httpGet: { path: string; port: string } };
        readinessProbe: { httpGet: { path: string; port: string } };
        resources: { requests?: Record<string, string>; limits?: Record<string, string> };
        securityContext: {
          runAsNonRoot?: boolean;
          readOnlyRootFilesystem: boolean;
          allowPrivilegeEscalation: boolean;
          capabilities: { drop: string[] };
        };
      }[];
    };
  };
}

describe('helm chart: lint, render and server-side dry run', function () {
  this.timeout(60_000);
  let cluster: ControlPlane;
  const values = new ValuesFiles();
  const suffix = randomBytes(3).toString('hex');
  const ns = `helm-tpl-${suffix}`;
  const watchedA = `helm-tpl-a-${suffix}`;
  const watchedB = `helm-tpl-b-${suffix}`;

  before(async function () {
    cluster = await getClusterOrSkip(this);
    for (const n of [ns, watchedA, watchedB]) await createRestrictedNamespace(cluster, n);
    await installCrd(cluster);
  });

  after(async () => {
    values.cleanup();
    if (cluster) for (const n of [ns, watchedA, watchedB]) await deleteNamespace(cluster, n);
  });

  /** helm lint --strict and helm template pass; the API server accepts every object, without warnings. */
  async function renderAndDryRun(v: Values, extra: readonly string[] = []): Promise<Manifest[]> {
    const file = values.write(v);
    ok(
      await cluster.helm(['lint', '--strict', chartDir, '--namespace', ns, '--values', file]),
      'helm lint --strict',
    );
    const text = ok(await helmTemplate(cluster, RELEASE, ns, file, extra), 'helm template');
    const applied = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: text });
    expect(applied.code, applied.stderr).to.equal(0);
    expect(applied.stderr, 'no warnings (Pod Security, deprecations)').to.not.match(/warning/i);
    return parseManifests(text);
  }

  it('keeps charts/mtkube/crds/ byte-identical to crds/ (copy the file after changing the CRD)', () => {
    const chartCrds = readdirSync(join(chartDir, 'crds')).filter((f) => /\.(ya?ml|json)$/.test(f));
    expect(chartCrds).to.deep.equal(['mtkube.dev_mtproxies.yaml']);
    const inChart = readFileSync(join(chartDir, 'crds', 'mtkube.dev_mtproxies.yaml'));
    expect(
      inChart.equals(readFileSync(crdPath)),
      'cp crds/mtkube.dev_mtproxies.yaml charts/mtkube/crds/',
    ).to.equal(true);
  });

  it('values.schema.json describes every value in values.yaml, and refuses unknown ones', () => {
    interface Schema {
      $ref?: string;
      type?: string;
      properties?: Record<string, Schema>;
      additionalProperties?: boolean | Schema;
      definitions?: Record<string, Schema>;
    }
    const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as Schema;
    const resolve = (s: Schema): Schema => (s.$ref ? schema.definitions![s.$ref.split('/').at(-1)!]! : s);
    const [defaults] = parseManifests(
      readFileSync(join(chartDir, 'values.yaml'), 'utf8'),
    ) as unknown as Values[];
    const walk = (value: unknown, s: Schema, path: string): void => {
      const r = resolve(s);
      if (!r.properties || value === null || typeof value !== 'object' || Array.isArray(value)) return;
      expect(r.additionalProperties, `${path || 'the top level'} is closed`).to.equal(false);
      for (const [k, v] of Object.entries(value)) {
        expect(r.properties, `${path}.${k} in values.schema.json`).to.have.property(k);
        walk(v, r.properties[k]!, `${path}.${k}`);
      }
    };
    walk(defaults, schema, '');
  });

  it("installs the project's version: appVersion is package.json's version", () => {
    const [chart] = parseManifests(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as unknown as {
      apiVersion: string;
      name: string;
      appVersion: string;
    }[];
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(chart!.apiVersion).to.equal('v2');
    expect(chart!.name).to.equal('mtkube');
    expect(chart!.appVersion).to.equal(pkg.version);
  });

  it('default values: the operator with cluster-wide RBAC, hardened, probed, labelled', async () => {
    const docs = await renderAndDryRun({});
    const kinds = docs.map((d) => `${d.kind}/${d.metadata.name}`).sort();
    expect(kinds).to.deep.equal(
      [
        `ClusterRole/${OPERATOR}`,
        `ClusterRoleBinding/${OPERATOR}`,
        `Deployment/${OPERATOR}`,
        `PodDisruptionBudget/${OPERATOR}`,
        `Pod/${OPERATOR}-test-healthz`,
        `Role/${OPERATOR}-leader-election`,
        `RoleBinding/${OPERATOR}-leader-election`,
        `Service/${OPERATOR}-metrics`,
        `ServiceAccount/${OPERATOR}`,
      ].sort(),
    );
    for (const d of docs) {
      expect(d.metadata.labels, `${d.kind} labels`).to.include({
        'app.kubernetes.io/name': 'mtkube',
        'app.kubernetes.io/instance': RELEASE,
        'app.kubernetes.io/managed-by': 'Helm',
        'app.kubernetes.io/part-of': 'mtkube',
        'helm.sh/chart': 'mtkube-0.1.0',
      });
    }
    const dep = findManifest(docs, 'Deployment')!;
    const spec = dep.spec as DeploymentSpec;
    const pod = spec.template.spec;
    const container = pod.containers[0]!;
    expect(spec.replicas).to.equal(1);
    expect(pod.serviceAccountName).to.equal(OPERATOR);
    expect(pod.securityContext).to.deep.include({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext).to.deep.include({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.image).to.equal('ghcr.io/mtkube/mtproxy-operator:0.1.0');
    expect(container.ports).to.deep.equal([{ name: 'metrics', containerPort: 8080, protocol: 'TCP' }]);
    expect(container.livenessProbe.httpGet).to.deep.equal({ path: '/healthz', port: 'metrics' });
    expect(container.readinessProbe.httpGet).to.deep.equal({ path: '/readyz', port: 'metrics' });
    expect(container.resources.requests).to.have.keys('cpu', 'memory');
    expect(container.resources.limits).to.have.keys('memory');
    expect(spec.template.metadata.annotations).to.include({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '8080',
      'prometheus.io/path': '/metrics',
    });
    expect(containerEnv(dep)).to.deep.equal({
      WATCH_NAMESPACES: '',
      LEADER_ELECT: 'true',
      LEASE_NAMESPACE: ns,
      LEASE_NAME: OPERATOR,
      METRICS_PORT: '8080',
      METRICS_BIND: '0.0.0.0',
      LOG_LEVEL: 'info',
      DEFAULT_PROXY_IMAGE: 'ghcr.io/mtkube/mtproxy:0.1.0',
      // Least privilege by default: the default image's repository, no host network.
      ALLOWED_IMAGES: '',
      ALLOW_HOST_NETWORK: 'false',
      RESYNC_PERIOD: '5m',
      MAX_CONCURRENT_RECONCILES: '2',
    });
    const svc = findManifest(docs, 'Service')!.spec as { selector: Record<string, string>; ports: unknown[] };
    expect(spec.template.metadata.labels).to.include(svc.selector);
    expect(svc.ports).to.deep.equal([
      { name: 'metrics', port: 8080, targetPort: 'metrics', protocol: 'TCP' },
    ]);
    expect(findManifest(docs, 'PodDisruptionBudget')!.spec).to.deep.include({ maxUnavailable: 1 });
  });

  it('renders the RBAC of operator/deploy/rbac.yaml, rule for rule', async () => {
    const shipped = parseManifests(readFileSync(join(repoRoot, 'operator/deploy/rbac.yaml'), 'utf8'));
    const shippedRules = rulesOf(shipped, 'ClusterRole', 'mtkube-operator');
    const shippedLease = rulesOf(shipped, 'Role', 'mtkube-operator-leader-election');

    const clusterWide = await renderAndDryRun({});
    expect(rulesOf(clusterWide, 'ClusterRole', OPERATOR)).to.deep.equal(shippedRules);
    expect(rulesOf(clusterWide, 'Role', `${OPERATOR}-leader-election`)).to.deep.equal(shippedLease);

    const namespaced = await renderAndDryRun({ watchNamespaces: [watchedA] });
    expect(rulesOf(namespaced, 'Role', OPERATOR)).to.deep.equal(shippedRules);
  });

  it('watchNamespaces: a Role and RoleBinding in each watched namespace, nothing cluster-wide', async () => {
    const docs = await renderAndDryRun({ watchNamespaces: [watchedA, watchedB] });
    expect(docs.filter((d) => d.kind.startsWith('Cluster'))).to.deep.equal([]);
    for (const watched of [watchedA, watchedB]) {
      const role = docs.find((d) => d.kind === 'Role' && d.metadata.namespace === watched);
      const binding = docs.find((d) => d.kind === 'RoleBinding' && d.metadata.namespace === watched);
      expect(role?.metadata.name, `Role in ${watched}`).to.equal(OPERATOR);
      expect(binding?.subjects, `RoleBinding in ${watched}`).to.deep.equal([
        { kind: 'ServiceAccount', name: OPERATOR, namespace: ns },
      ]);
    }
    // The Lease stays in the release namespace, which is not watched here.
    const lease = findManifest(docs, 'Role', `${OPERATOR}-leader-election`)!;
    expect(lease.metadata.namespace).to.equal(ns);
    expect(containerEnv(findManifest(docs, 'Deployment')!).WATCH_NAMESPACES).to.equal(
      `${watchedA},${watchedB}`,
    );
  });

  it('policy values become the operator settings that bound what MTProxy authors may ask for', async () => {
    const docs = await renderAndDryRun({
      policy: {
        allowedImages: ['registry.local/mt/*', 'ghcr.io/mtkube/mtproxy'],
        allowHostNetwork: true,
        proxyServiceAccount: 'mtproxy-pods',
      },
    });
    const env = Object.fromEntries(
      (
        findManifest(docs, 'Deployment')!.spec as {
          template: { spec: { containers: { env: { name: string; value: string }[] }[] } };
        }
      ).template.spec.containers[0]!.env.map((e) => [e.name, e.value]),
    );
    expect(env).to.include({
      ALLOWED_IMAGES: 'registry.local/mt/*,ghcr.io/mtkube/mtproxy',
      ALLOW_HOST_NETWORK: 'true',
      PROXY_SERVICE_ACCOUNT: 'mtproxy-pods',
    });
  });

  it('replicaCount 2: two operator pods with leader election and a PodDisruptionBudget', async () => {
    const docs = await renderAndDryRun({ replicaCount: 2 });
    const dep = findManifest(docs, 'Deployment')!;
    expect((dep.spec as DeploymentSpec).replicas).to.equal(2);
    expect(containerEnv(dep)).to.include({ LEADER_ELECT: 'true', LEASE_NAME: OPERATOR, LEASE_NAMESPACE: ns });
    expect(findManifest(docs, 'PodDisruptionBudget')).to.not.equal(undefined);

    const refused = await helmTemplate(
      cluster,
      RELEASE,
      ns,
      values.write({ replicaCount: 2, leaderElection: { enabled: false } }),
    );
    expect(refused.code).to.not.equal(0);
    expect(refused.stderr).to.include('replicaCount above 1 needs leaderElection.enabled');
  });

  it('serviceMonitor on: skipped while the cluster has no ServiceMonitor API, rendered when it has', async () => {
    const on = { metrics: { serviceMonitor: { enabled: true, labels: { release: 'prom' } } } };
    const without = await renderAndDryRun(on);
    expect(findManifest(without, 'ServiceMonitor')).to.equal(undefined);

    // What a cluster with the Prometheus operator reports; not applied, since this one lacks the CRD.
    const file = values.write(on);
    const text = ok(
      await helmTemplate(cluster, RELEASE, ns, file, [
        '--api-versions',
        'monitoring.coreos.com/v1/ServiceMonitor',
      ]),
      'helm template',
    );
    const docs = parseManifests(text);
    const monitor = findManifest(docs, 'ServiceMonitor')!;
    expect(monitor.metadata.labels).to.include({ release: 'prom' });
    const svc = findManifest(docs, 'Service')!;
    const ms = monitor.spec as {
      selector: { matchLabels: Record<string, string> };
      endpoints: { port: string }[];
    };
    expect(svc.metadata.labels).to.include(ms.selector.matchLabels);
    expect(ms.endpoints.map((e) => e.port)).to.deep.equal(['metrics']);

    // A real install against this cluster says why there is none.
    const dry = await cluster.helm(
      ['install', 'smon', chartDir, '--namespace', ns, '--dry-run=server', '--values', file],
      { timeoutMs: 30_000 },
    );
    expect(dry.code, dry.stderr).to.equal(0);
    expect(dry.stdout).to.include('WARNING: metrics.serviceMonitor.enabled is true');
    expect(dry.stdout).to.not.include('kind: ServiceMonitor');
  });

  it('proxy.enabled: one MTProxy from values, checked by the API server against the CRD', async () => {
    const spec = basicExampleSpec();
    const docs = await renderAndDryRun({ proxy: { enabled: true, name: 'tg-proxy', spec } });
    const mtp = findManifest(docs, 'MTProxy', 'tg-proxy')!;
    expect(mtp.apiVersion).to.equal('mtkube.dev/v1alpha1');
    expect(mtp.metadata.namespace).to.equal(ns);
    expect(mtp.spec).to.deep.equal(spec);
    expect(mtp.metadata.labels).to.include({ 'app.kubernetes.io/component': 'proxy' });

    const bad = ok(
      await helmTemplate(
        cluster,
        RELEASE,
        ns,
        values.write({
          proxy: { enabled: true, spec: { adTag: { value: 'ab'.repeat(16) }, upstream: { mode: 'direct' } } },
        }),
      ),
      'helm template',
    );
    const refused = await cluster.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: bad });
    expect(refused.code).to.not.equal(0);
    expect(refused.stderr).to.include('an ad tag needs the middle proxy');

    const unwatched = await helmTemplate(
      cluster,
      RELEASE,
      ns,
      values.write({ watchNamespaces: [watchedA], proxy: { enabled: true } }),
    );
    expect(unwatched.code).to.not.equal(0);
    expect(unwatched.stderr).to.include(`release namespace ${ns}, which watchNamespaces does not list`);
  });

  const refusedValues: { values: Values; says: string }[] = [
    { values: { replicaCount: 'two' }, says: "at '/replicaCount': got string, want integer" },
    { values: { replicas: 2 }, says: "additional properties 'replicas' not allowed" },
    { values: { watchNamespaces: ['Team_A'] }, says: "at '/watchNamespaces/0'" },
    { values: { logLevel: 'verbose' }, says: "at '/logLevel': value must be one of" },
    { values: { resyncPeriod: '5 minutes' }, says: "at '/resyncPeriod'" },
    { values: { metrics: { port: 80 } }, says: "at '/metrics/port': minimum" },
    {
      values: { metrics: { serviceMonitor: { enable: true } } },
      says: "additional properties 'enable' not allowed",
    },
    { values: { image: { repository: 'x/op', tag: 'not a tag' } }, says: "at '/image/tag'" },
    { values: { test: { image: { repository: 'busybox', tag: 'latest' } } }, says: "at '/test/image/tag'" },
    {
      values: { podDisruptionBudget: { maxUnavailable: 'half' } },
      says: "at '/podDisruptionBudget/maxUnavailable'",
    },
    { values: { proxy: { enabled: 'yes' } }, says: "at '/proxy/enabled': got string, want boolean" },
  ];
  for (const { values: bad, says } of refusedValues) {
    it(`values.schema.json refuses ${JSON.stringify(bad)} in lint and template, naming the value`, async () => {
      const file = values.write(bad);
      for (const result of [
        await cluster.helm(['lint', '--strict', chartDir, '--values', file]),
        await helmTemplate(cluster, RELEASE, ns, file),
      ]) {
        expect(result.code).to.not.equal(0);
        const said = result.stdout + result.stderr;
        expect(said).to.include("values don't meet the specifications of the schema");
        expect(said).to.include(says);
      }
    });
  }

  it('a PodDisruptionBudget takes maxUnavailable or minAvailable, not both', async () => {
    const both = await helmTemplate(
      cluster,
      RELEASE,
      ns,
      values.write({ podDisruptionBudget: { maxUnavailable: 1, minAvailable: 1 } }),
    );
    expect(both.code).to.not.equal(0);
    expect(both.stderr).to.include('give maxUnavailable or minAvailable, not both');
    const docs = await renderAndDryRun({
      podDisruptionBudget: { maxUnavailable: null, minAvailable: '50%' },
    });
    expect(findManifest(docs, 'PodDisruptionBudget')!.spec).to.deep.include({ minAvailable: '50%' });
  });
});
