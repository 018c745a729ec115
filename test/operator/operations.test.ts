// Running the operator as one would in production: two replicas with a Lease, the ServiceAccount
// and RBAC we ship, /metrics /healthz /readyz, and the CLI as a process.
import { type ChildProcess, spawn } from 'node:child_process';
import { expect } from 'chai';
import type { Operator } from '../../operator/src/operator.js';
import { eventually } from '../cluster/eventually.js';
import { ApiOutage } from './support/api-outage.js';
import {
  type DeploymentJson,
  envOf,
  freshTestBedPerTest,
  rbacPath,
  repoRoot,
  type TestBed,
} from './support/harness.js';

async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

describe('operator: in operation', function () {
  this.timeout(120_000);
  let bed: TestBed;
  freshTestBedPerTest((b) => {
    bed = b;
  });

  it('of two operators one leads; the other takes over when the leader stops', async () => {
    const a = await bed.startOperator({ leaderElect: true, identity: 'operator-a' });
    await eventually(async () => expect(a.isLeader).to.equal(true));
    const b = await bed.startOperator({ leaderElect: true, identity: 'operator-b' });
    await b.started();
    expect(b.isLeader).to.equal(false);
    expect(b.controller, 'a standby runs no controller').to.equal(undefined);

    const lease = await bed.get<{ spec: { holderIdentity: string } }>('lease', 'mtkube-operator');
    expect(lease.spec.holderIdentity).to.equal('operator-a');
    expect((await httpGet(a.metricsPort, '/metrics')).body).to.match(
      /leader_election_master_status\{name="mtkube-operator"\} 1/,
    );
    expect((await httpGet(b.metricsPort, '/metrics')).body).to.match(
      /leader_election_master_status\{name="mtkube-operator"\} 0/,
    );

    await bed.applyProxy('tg', { workers: 1 });
    await bed.waitForCondition('tg', 'Ready', 'True');

    // A graceful stop releases the Lease: b leads within a retry period or two.
    const stoppedAt = Date.now();
    await bed.stopOperator(a);
    await eventually(async () => expect(b.isLeader).to.equal(true), { timeoutMs: 10_000, intervalMs: 100 });
    expect(Date.now() - stoppedAt).to.be.below(4_000);

    await bed.applyProxy('tg', { workers: 3 });
    await eventually(async () => {
      expect(envOf(await bed.get<DeploymentJson>('deployment', 'tg')).WORKERS?.value).to.equal('3');
    });
    expect(
      (await bed.get<{ spec: { holderIdentity: string } }>('lease', 'mtkube-operator')).spec.holderIdentity,
    ).to.equal('operator-b');
  });

  it('a leader that dies without releasing is replaced once its Lease expires', async () => {
    const a = await bed.startOperator({ leaderElect: true, identity: 'operator-a' });
    await eventually(async () => expect(a.isLeader).to.equal(true));
    const b = await bed.startOperator({ leaderElect: true, identity: 'operator-b' });
    await b.started();
    await a.crash();
    bed.operators.splice(bed.operators.indexOf(a), 1);
    const diedAt = Date.now();
    expect(b.isLeader).to.equal(false);
    await eventually(async () => expect(b.isLeader).to.equal(true), { timeoutMs: 15_000, intervalMs: 100 });
    // Not before the 4 s lease duration of the test setup has passed.
    expect(Date.now() - diedAt).to.be.at.least(3_000);
    await bed.applyProxy('tg', {});
    await bed.waitForCondition('tg', 'Ready', 'True');
  });

  it('keeps working through an API server outage, and catches up with what changed meanwhile', async () => {
    const relay = await ApiOutage.start(new URL(bed.cluster.server));
    try {
      const op = await bed.startOperator({ kubeConfig: relay.kubeConfigVia(bed.cluster.kubeconfigPath) });
      await bed.applyProxy('before', {});
      await bed.waitForCondition('before', 'Ready', 'True');

      relay.down();
      await bed.applyProxy('during', {});
      await new Promise((r) => setTimeout(r, 3_000));
      expect(await bed.find('deployment', 'during'), 'the operator cannot reach the API server').to.equal(
        undefined,
      );

      relay.up();
      await bed.waitForCondition('during', 'Ready', 'True', undefined, 60_000);
      const metrics = (await httpGet(op.metricsPort, '/metrics')).body;
      expect(metrics).to.match(
        /mtkube_operator_watch_restarts_total\{resource="mtproxies",cause="error"\} [1-9]/,
      );
    } finally {
      for (const op of bed.operators.splice(0)) await op.stop();
      await relay.stop();
    }
  });

  it('works as the ServiceAccount with the RBAC we ship, not as admin', async () => {
    await bed.cluster.kubectl(['create', 'namespace', 'mtkube-system']);
    await bed.cluster.kubectlOk(['apply', '-f', rbacPath]);
    const kubeconfigPath = await bed.cluster.kubeconfigForServiceAccount('mtkube-system', 'mtkube-operator');
    const op = await bed.startOperator({
      kubeconfigPath,
      leaderElect: true,
      leaseNamespace: 'mtkube-system',
      leaseName: `lease-${bed.ns}`,
    });
    // Fresh RBAC bindings take a moment to reach the authorizer; preflight retries until then.
    await eventually(async () => {
      const readyz = await httpGet(op.metricsPort, '/readyz');
      expect(readyz.status, readyz.body).to.equal(200);
    });
    await bed.applyProxy('tg', {
      publicAddress: { host: 'p.example.com' },
      podDisruptionBudget: { enabled: true },
      adTag: { secretKeyRef: { name: 'tag' } },
    });
    await bed.kubectlOk(['create', 'secret', 'generic', 'tag', `--from-literal=tag=${'ab'.repeat(16)}`]);
    await bed.kubectlOk(['label', 'secret', 'tag', 'mtkube.dev/mtproxy=tg']);
    const mtp = await bed.waitForCondition('tg', 'Ready', 'True');
    expect(mtp.status?.mode).to.equal('middle');
    await bed.get('secret', 'tg-links');
    await bed.get('poddisruptionbudget', 'tg');
    const events = await bed.kubectlOk(['get', 'events', '-o', 'name']);
    expect(events).to.include('event/tg.');
    await bed.cluster.kubectlOk([
      'delete',
      'lease',
      `lease-${bed.ns}`,
      '--namespace',
      'mtkube-system',
      '--wait=false',
    ]);
  });

  it('ships an operator Deployment the API server accepts', async () => {
    await bed.cluster.kubectl(['create', 'namespace', 'mtkube-system']);
    const out = await bed.cluster.kubectlOk([
      'apply',
      '--dry-run=server',
      '-f',
      rbacPath.replace('rbac.yaml', 'operator.yaml'),
    ]);
    expect(out).to.include('deployment.apps/mtkube-operator');
  });

  it('without permissions it says which ones are missing and is not ready', async () => {
    await bed.kubectlOk(['create', 'serviceaccount', 'nobody']);
    const kubeconfigPath = await bed.cluster.kubeconfigForServiceAccount(bed.ns, 'nobody');
    const op = await bed.startOperator({ kubeconfigPath });
    const readyz = await eventually(async () => {
      const r = await httpGet(op.metricsPort, '/readyz');
      expect(r.body).to.include('may not');
      return r;
    });
    expect(readyz.status).to.equal(503);
    expect(readyz.body).to.include(`list mtproxies.mtkube.dev in ${bed.ns}`);
    expect(readyz.body).to.include(`patch deployments.apps in ${bed.ns}`);
    expect(readyz.body).to.include('operator/deploy/rbac.yaml');
    expect((await httpGet(op.metricsPort, '/healthz')).status).to.equal(200);
  });

  it('serves its metrics: reconciles by result, their duration, queue depth', async () => {
    const op: Operator = await bed.startOperator();
    await bed.applyProxy('tg', {});
    await bed.waitForCondition('tg', 'Ready', 'True');
    const { status, body } = await httpGet(op.metricsPort, '/metrics');
    expect(status).to.equal(200);
    expect(body).to.match(
      /controller_runtime_reconcile_total\{controller="mtproxy",result="success"\} [1-9]/,
    );
    expect(body).to.match(/controller_runtime_reconcile_time_seconds_count\{controller="mtproxy"\} [1-9]/);
    expect(body).to.match(/workqueue_depth\{name="mtproxy"\} \d/);
    expect(body).to.match(/mtkube_operator_managed_proxies 1/);
    expect((await httpGet(op.metricsPort, '/readyz')).body).to.match(/^ok/);
  });

  it('runs as the mtproxy-operator command with KUBECONFIG, and stops cleanly on SIGTERM', async () => {
    const child: ChildProcess = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        `${repoRoot}operator/src/cli.ts`,
        '--metrics-port',
        '0',
        '--metrics-bind',
        '127.0.0.1',
      ],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          KUBECONFIG: bed.cluster.kubeconfigPath,
          WATCH_NAMESPACES: bed.ns,
          LEASE_NAMESPACE: bed.ns,
          DEFAULT_PROXY_IMAGE: 'example.invalid/from-cli:1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await bed.applyProxy('tg', {});
      await eventually(async () => {
        const dep = await bed.get<DeploymentJson>('deployment', 'tg');
        expect(dep.spec.template.spec.containers[0]!.image).to.equal('example.invalid/from-cli:1');
      });
      expect(out).to.include('"message":"became the leader"');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).to.equal(0);
    expect(out).to.include('"message":"operator stopped"');
    const lease = await bed.get<{ spec: { holderIdentity?: string } }>('lease', 'mtkube-operator');
    expect(lease.spec.holderIdentity ?? '', 'released on the way out').to.equal('');
  });
});
