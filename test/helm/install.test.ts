// The chart installed into the test cluster as a user would: `helm install`, then the operator
// itself, run on this machine with the token of the ServiceAccount the chart created and the
// environment of the chart's Deployment (the cluster's pods are fakes that run nothing), so the
// chart's RBAC is proven sufficient by an MTProxy that gets reconciled. Then `helm test`,
// `helm upgrade` and `helm uninstall`, which leaves the CRD and the users' MTProxies behind.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { expect } from 'chai';
import type { ControlPlane } from '../cluster/control-plane.js';
import { eventually } from '../cluster/eventually.js';
import { deleteNamespace, getClusterOrSkip } from '../cluster/shared-cluster.js';
import {
  chartDir,
  containerEnv,
  createRestrictedNamespace,
  type Manifest,
  type OperatorProcess,
  ok,
  repoRoot,
  startOperatorProcess,
  type Values,
  ValuesFiles,
  waitForPermission,
  waitLeading,
  waitReady,
} from './support.js';

const EXAMPLE = join(repoRoot, 'crds/examples/basic.yaml');

interface Condition {
  type: string;
  status: string;
  reason: string;
}

interface MTProxyJson {
  metadata: { generation: number };
  status?: { observedGeneration?: number; conditions?: Condition[]; linksSecretName?: string };
}

/** What a user sees once an MTProxy is reconciled: its Secrets, its Deployment, Ready. */
async function expectReconciled(
  cluster: ControlPlane,
  ns: string,
  name: string,
  host: string,
): Promise<void> {
  const get = async <T>(kind: string, n: string): Promise<T> =>
    JSON.parse(await cluster.kubectlOk(['get', kind, n, '-n', ns, '-o', 'json'])) as T;
  const mtp = await eventually(
    async () => {
      const m = await get<MTProxyJson>('mtproxy', name);
      const ready = m.status?.conditions?.find((c) => c.type === 'Ready');
      const where = `${name}: ${JSON.stringify(m.status?.conditions)}`;
      if (ready?.status !== 'True' || m.status?.observedGeneration !== m.metadata.generation)
        throw new Error(where);
      return m;
    },
    { timeoutMs: 45_000, intervalMs: 300 },
  );
  expect(mtp.status?.linksSecretName).to.equal(`${name}-links`);
  const secrets = await get<{ data: Record<string, string> }>('secret', `${name}-secrets`);
  expect(Buffer.from(secrets.data.secrets!, 'base64').toString()).to.match(/^[0-9a-f]{32}$/);
  const links = await get<{ data: Record<string, string> }>('secret', `${name}-links`);
  expect(Buffer.from(links.data['links.txt']!, 'base64').toString()).to.include(
    `tg://proxy?server=${host}&port=443`,
  );
  const dep = await get<{ spec: { replicas: number } }>('deployment', name);
  expect(dep.spec.replicas).to.be.at.least(1);
}

async function installedDeployment(cluster: ControlPlane, ns: string, name: string): Promise<Manifest> {
  return JSON.parse(await cluster.kubectlOk(['get', 'deployment', name, '-n', ns, '-o', 'json'])) as Manifest;
}

/** Every listable namespaced object in `ns` but events, as kubectl names them. */
async function everythingIn(cluster: ControlPlane, ns: string): Promise<string[]> {
  const kinds = (await cluster.kubectlOk(['api-resources', '--namespaced', '--verbs=list', '-o', 'name']))
    .split('\n')
    .filter((k) => k !== '' && !k.startsWith('events'));
  const out = await cluster.kubectlOk(['get', kinds.join(','), '-n', ns, '-o', 'name', '--ignore-not-found']);
  return out.split('\n').filter((l) => l !== '');
}

describe('helm chart: install, operate, test, upgrade, uninstall', function () {
  this.timeout(120_000);
  let cluster: ControlPlane;
  const values = new ValuesFiles();
  const operators: OperatorProcess[] = [];
  const namespaces: string[] = [];

  before(async function () {
    cluster = await getClusterOrSkip(this);
  });

  after(async () => {
    for (const op of operators.splice(0)) await op.stop();
    values.cleanup();
    if (cluster) for (const ns of namespaces) await deleteNamespace(cluster, ns);
  });

  async function restrictedNamespace(prefix: string): Promise<string> {
    const ns = `${prefix}-${randomBytes(3).toString('hex')}`;
    await createRestrictedNamespace(cluster, ns);
    namespaces.push(ns);
    return ns;
  }

  async function helmOk(args: readonly string[], what: string): Promise<string> {
    return ok(await cluster.helm(args, { timeoutMs: 90_000 }), what);
  }

  async function install(release: string, ns: string, v: Values): Promise<string> {
    return helmOk(
      ['install', release, chartDir, '-n', ns, '--values', values.write(v), '--wait', '--timeout', '60s'],
      'helm install',
    );
  }

  /** The operator as the chart's ServiceAccount, with the env of the installed Deployment. */
  async function runOperatorAsChart(ns: string, operatorName: string): Promise<OperatorProcess> {
    const sa = `system:serviceaccount:${ns}:${operatorName}`;
    const env = containerEnv(await installedDeployment(cluster, ns, operatorName));
    const scope = env.WATCH_NAMESPACES ? ['-n', env.WATCH_NAMESPACES.split(',')[0]!] : ['-A'];
    await waitForPermission(cluster, sa, ['watch', 'mtproxies.mtkube.dev', ...scope]);
    const kubeconfig = await cluster.kubeconfigForServiceAccount(ns, operatorName);
    const op = await startOperatorProcess(kubeconfig, env);
    operators.push(op);
    return op;
  }

  async function stopOperator(op: OperatorProcess): Promise<void> {
    operators.splice(operators.indexOf(op), 1);
    expect(await op.stop(), op.output().slice(-2000)).to.equal(0);
  }

  describe('cluster-wide (default values)', () => {
    const release = 'mtk';
    const operatorName = 'mtk-mtkube-operator';
    let ns: string;
    let userNs: string;
    let op: OperatorProcess;

    before(async () => {
      ns = await restrictedNamespace('helm-inst');
      userNs = await restrictedNamespace('helm-user');
    });

    it('helm install: the operator Deployment becomes available and the notes say how to get links', async () => {
      const out = await install(release, ns, {});
      expect(out).to.include('STATUS: deployed');
      expect(out).to.include("get secret tg-proxy-links -o jsonpath='{.data.links\\.txt}' | base64 -d");
      expect(out).to.include(`kubectl -n ${ns} rollout status deployment/${operatorName}`);
      const dep = await installedDeployment(cluster, ns, operatorName);
      expect((dep.status as { availableReplicas?: number }).availableReplicas).to.equal(1);
      // The CRD came with the chart (or was there already): MTProxy is served.
      await cluster.kubectlOk(['get', 'mtproxies', '-n', userNs]);
      await cluster.kubectlOk(['get', 'clusterrolebinding', operatorName]);
    });

    it("the operator, as the chart's ServiceAccount, reconciles crds/examples/basic.yaml", async () => {
      op = await runOperatorAsChart(ns, operatorName);
      // Ready means the preflight found every permission it needs in every namespace.
      expect(await waitLeading(op)).to.match(/^ok: leading/);
      await cluster.kubectlOk(['apply', '-n', userNs, '-f', EXAMPLE]);
      await expectReconciled(cluster, userNs, 'tg-proxy', 'proxy.example.com');
      await cluster.kubectlOk(['get', 'poddisruptionbudget', 'tg-proxy', '-n', userNs]);
      const lease = JSON.parse(
        await cluster.kubectlOk(['get', 'lease', operatorName, '-n', ns, '-o', 'json']),
      ) as { spec: { holderIdentity: string } };
      expect(
        lease.spec.holderIdentity,
        'the Lease named by the chart, in the release namespace',
      ).to.not.equal('');
      expect(op.output()).to.include('"message":"became the leader"');
    });

    it('helm test: runs the /healthz pod named in values, and removes it once it passed', async () => {
      const podName = `${operatorName}-test-healthz`;
      const running = cluster.helm(['test', release, '-n', ns, '--timeout', '60s'], { timeoutMs: 70_000 });
      const pod = await eventually(
        async () => {
          const p = JSON.parse(await cluster.kubectlOk(['get', 'pod', podName, '-n', ns, '-o', 'json'])) as {
            metadata: { annotations: Record<string, string> };
            spec: { containers: { image: string; command: string[] }[] };
            status: { phase: string };
          };
          if (p.status.phase !== 'Running') throw new Error(`test pod ${p.status.phase}`);
          return p;
        },
        { timeoutMs: 30_000 },
      );
      expect(pod.metadata.annotations['helm.sh/hook']).to.equal('test');
      expect(pod.spec.containers[0]!.image).to.equal('busybox:1.37.0');
      const url = pod.spec.containers[0]!.command.at(-1)!;
      expect(url).to.equal(`http://${operatorName}-metrics.${ns}.svc:8080/healthz`);
      const svc = JSON.parse(
        await cluster.kubectlOk(['get', 'service', `${operatorName}-metrics`, '-n', ns, '-o', 'json']),
      ) as { spec: { ports: { port: number }[] } };
      expect(svc.spec.ports[0]!.port).to.equal(8080);
      // kwok runs no containers; report what wget's exit 0 would, as a kubelet does.
      await cluster.kubectlOk([
        'patch',
        'pod',
        podName,
        '-n',
        ns,
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status: { phase: 'Succeeded' } }),
      ]);
      const result = await running;
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stdout).to.match(/Phase:\s+Succeeded/);
      await eventually(async () => {
        const left = await cluster.kubectlOk([
          'get',
          'pod',
          podName,
          '-n',
          ns,
          '--ignore-not-found',
          '-o',
          'name',
        ]);
        expect(left.trim(), 'hook-succeeded deletes the test pod').to.equal('');
      });
    });

    it('helm upgrade: two replicas and new limits roll out; the operator keeps working', async () => {
      const out = await helmOk(
        [
          'upgrade',
          release,
          chartDir,
          '-n',
          ns,
          '--values',
          values.write({ replicaCount: 2, resources: { limits: { memory: '384Mi' } } }),
          '--wait',
          '--timeout',
          '60s',
        ],
        'helm upgrade',
      );
      expect(out).to.include('REVISION: 2');
      const dep = await installedDeployment(cluster, ns, operatorName);
      const spec = dep.spec as {
        replicas: number;
        template: { spec: { containers: { resources: { limits: Record<string, string> } }[] } };
      };
      expect(spec.replicas).to.equal(2);
      expect(spec.template.spec.containers[0]!.resources.limits.memory).to.equal('384Mi');
      expect((dep.status as { readyReplicas?: number }).readyReplicas).to.equal(2);
      expect((await op.readyz()).status).to.equal(200);
      await cluster.kubectlOk(['scale', 'mtproxy', 'tg-proxy', '-n', userNs, '--replicas=3']);
      await eventually(async () => {
        const d = await installedDeployment(cluster, userNs, 'tg-proxy');
        expect((d.spec as { replicas: number }).replicas).to.equal(3);
      });
    });

    it("helm uninstall: the chart's objects are gone; the CRD and the user's MTProxy stay", async () => {
      await stopOperator(op);
      const out = await helmOk(
        ['uninstall', release, '-n', ns, '--wait', '--timeout', '60s'],
        'helm uninstall',
      );
      expect(out).to.include(`release "${release}" uninstalled`);
      for (const kind of ['clusterrole', 'clusterrolebinding']) {
        expect(
          await cluster.kubectlOk(['get', kind, operatorName, '--ignore-not-found', '-o', 'name']),
          kind,
        ).to.equal('');
      }
      // Left in the release namespace: what Kubernetes puts in every namespace, and the Lease the
      // operator wrote at run time (Helm deletes only what it created; it goes with the namespace).
      await eventually(async () => {
        expect((await everythingIn(cluster, ns)).sort()).to.deep.equal([
          'configmap/kube-root-ca.crt',
          `lease.coordination.k8s.io/${operatorName}`,
          'serviceaccount/default',
        ]);
      });
      // Helm never deletes the CRDs of a chart's crds/ folder, so MTProxies and their Secrets
      // (the links users were given) survive an uninstall and a later reinstall.
      await cluster.kubectlOk(['get', 'crd', 'mtproxies.mtkube.dev']);
      const kept = await cluster.kubectlOk([
        'get',
        'mtproxy/tg-proxy',
        'secret/tg-proxy-secrets',
        'secret/tg-proxy-links',
        'deployment/tg-proxy',
        '-n',
        userNs,
        '-o',
        'name',
      ]);
      expect(kept.trim().split('\n')).to.have.length(4);
    });
  });

  describe('namespaced (watchNamespaces), two operators, one MTProxy from values', () => {
    const release = 'mtkns';
    const operatorName = 'mtkns-mtkube-operator';
    let ns: string;
    let watched: string;

    before(async () => {
      ns = await restrictedNamespace('helm-ns');
      watched = await restrictedNamespace('helm-watched');
    });

    it("reconciles in the watched namespaces with Roles only; one operator leads, one stands by; uninstall removes the chart's MTProxy", async () => {
      await install(release, ns, {
        watchNamespaces: [ns, watched],
        replicaCount: 2,
        proxy: { enabled: true, name: 'edge', spec: { publicAddress: { host: 'edge.example.com' } } },
      });
      const sa = `system:serviceaccount:${ns}:${operatorName}`;
      const canI = async (...args: string[]) =>
        (await cluster.kubectl(['auth', 'can-i', ...args, `--as=${sa}`])).stdout.trim();
      expect(await canI('list', 'mtproxies.mtkube.dev', '-A'), 'nothing cluster-wide').to.equal('no');
      expect(
        await canI('get', 'secrets', '-n', 'default'),
        'no Secrets outside the watched namespaces',
      ).to.equal('no');

      const first = await runOperatorAsChart(ns, operatorName);
      const second = await runOperatorAsChart(ns, operatorName);
      const answers = [await waitReady(first), await waitReady(second)];
      await eventually(async () => {
        const leaders = [first, second].filter((o) => o.output().includes('"message":"became the leader"'));
        expect(leaders, answers.join(' / ')).to.have.length(1);
      });

      await expectReconciled(cluster, ns, 'edge', 'edge.example.com');
      await cluster.kubectlOk(['apply', '-n', watched, '-f', EXAMPLE]);
      await expectReconciled(cluster, watched, 'tg-proxy', 'proxy.example.com');

      await stopOperator(first);
      await stopOperator(second);
      await helmOk(['uninstall', release, '-n', ns, '--wait', '--timeout', '60s'], 'helm uninstall');
      // The chart's MTProxy goes with the release, its Deployment by garbage collection; the
      // generated secrets stay (secrets.retentionPolicy Retain), so a reinstall keeps the links.
      await eventually(
        async () => {
          const left = await everythingIn(cluster, ns);
          expect(left.filter((n) => /edge|mtkns/.test(n)).sort()).to.deep.equal([
            'lease.coordination.k8s.io/mtkns-mtkube-operator',
            'secret/edge-secrets',
          ]);
        },
        // The garbage collector may take a resync period (30 s) to notice a new kind of owner.
        { timeoutMs: 60_000, intervalMs: 500 },
      );
      await cluster.kubectlOk(['get', 'mtproxy/tg-proxy', 'deployment/tg-proxy', '-n', watched]);
      expect(
        await cluster.kubectlOk(['get', 'role,rolebinding', '-n', watched, '-o', 'name']),
        'the Role in the watched namespace is gone too',
      ).to.equal('');
    });
  });
});
