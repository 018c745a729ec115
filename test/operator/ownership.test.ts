// The operator acts only on what it created. A tenant's PodDisruptionBudget, ServiceMonitor,
// Service or Secret that happens to carry the name an MTProxy wants is left exactly as it was, and
// the MTProxy says which object is in the way.
import { join } from 'node:path';
import { expect } from 'chai';
import { eventually } from '../cluster/eventually.js';
import { freshTestBedPerTest, type JsonObject, repoRoot, type TestBed } from './support/harness.js';

const smCrd = join(repoRoot, 'test', 'operator', 'fixtures', 'servicemonitor-crd.yaml');

const tenantPdb = {
  apiVersion: 'policy/v1',
  kind: 'PodDisruptionBudget',
  metadata: { name: 'web', labels: { app: 'shop' } },
  spec: { maxUnavailable: 1, selector: { matchLabels: { app: 'shop' } } },
};
const tenantServiceMonitor = {
  apiVersion: 'monitoring.coreos.com/v1',
  kind: 'ServiceMonitor',
  metadata: { name: 'web', labels: { app: 'shop' } },
  spec: { selector: { matchLabels: { app: 'shop' } }, endpoints: [{ port: 'http' }] },
};
const tenantService = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', labels: { app: 'shop' } },
  spec: { selector: { app: 'shop' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
};

type Obj = JsonObject & { spec?: Record<string, unknown> };

async function snapshot(bed: TestBed, kind: string, name: string) {
  const o = await bed.get<Obj>(kind, name);
  return { uid: o.metadata.uid, labels: o.metadata.labels, owners: o.metadata.ownerReferences, spec: o.spec };
}

describe('operator: it acts only on objects it created', function () {
  this.timeout(120_000);
  let bed: TestBed;
  freshTestBedPerTest((b) => {
    bed = b;
  });
  it("an MTProxy named like a tenant's PDB, ServiceMonitor and Service leaves them alone and says which is in the way", async () => {
    // Cluster-wide: removed again at the end of this test, since other suites (the chart's) expect
    // a cluster without the ServiceMonitor API.
    await bed.cluster.kubectlOk(['apply', '--server-side', '-f', smCrd]);
    await bed.cluster.kubectlOk([
      'wait',
      '--for=condition=Established',
      'crd/servicemonitors.monitoring.coreos.com',
      '--timeout=30s',
    ]);
    for (const o of [tenantPdb, tenantServiceMonitor, tenantService]) await bed.apply(o);
    const before = {
      pdb: await snapshot(bed, 'poddisruptionbudget', 'web'),
      sm: await snapshot(bed, 'servicemonitor', 'web'),
      svc: await snapshot(bed, 'service', 'web'),
    };

    await bed.startOperator();
    await bed.applyProxy('web', { workers: 1 });
    const mtp = await bed.waitForCondition('web', 'Ready', 'False', 'Conflict');
    const ready = mtp.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready?.message).to.include('Service web already exists');
    const events = await bed.kubectlOk([
      'get',
      'events',
      '--field-selector',
      'reason=Conflict',
      '-o',
      'json',
    ]);
    expect(events).to.include('Service web already exists');

    // A spec change (the moment the old operator deleted PDBs and ServiceMonitors) changes nothing.
    await bed.applyProxy('web', { workers: 2 });
    await bed.waitForCondition('web', 'Ready', 'False', 'Conflict');
    expect(await snapshot(bed, 'poddisruptionbudget', 'web')).to.deep.equal(before.pdb);
    expect(await snapshot(bed, 'servicemonitor', 'web')).to.deep.equal(before.sm);
    expect(await snapshot(bed, 'service', 'web')).to.deep.equal(before.svc);
    expect(await bed.find('deployment', 'web'), 'nothing is rolled out behind a conflict').to.equal(
      undefined,
    );

    // The tenant removes its Service: the MTProxy proceeds, and still leaves the PDB alone.
    await bed.kubectlOk(['delete', 'service', 'web']);
    await eventually(
      async () => {
        const svc = await bed.get<Obj>('service', 'web');
        expect(svc.metadata.ownerReferences?.[0]?.uid).to.equal(mtp.metadata.uid);
        await bed.get('deployment', 'web');
      },
      { timeoutMs: 60_000 },
    );
    expect(await snapshot(bed, 'poddisruptionbudget', 'web')).to.deep.equal(before.pdb);
    expect(await snapshot(bed, 'servicemonitor', 'web')).to.deep.equal(before.sm);
  });

  afterEach(async () => {
    await bed.cluster.kubectl(['delete', '-f', smCrd, '--ignore-not-found', '--wait=true', '--timeout=60s'], {
      timeoutMs: 70_000,
    });
  });

  it('asking for a PDB while a tenant owns one of that name is a Conflict; the PDB keeps its spec', async () => {
    await bed.apply(tenantPdb);
    const before = await snapshot(bed, 'poddisruptionbudget', 'web');
    await bed.startOperator();
    await bed.applyProxy('web', { workers: 1, podDisruptionBudget: { enabled: true } });
    const mtp = await bed.waitForCondition('web', 'Ready', 'False', 'Conflict');
    expect(mtp.status?.conditions?.find((c) => c.type === 'Degraded')?.message).to.include(
      'PodDisruptionBudget web already exists',
    );
    expect(await snapshot(bed, 'poddisruptionbudget', 'web')).to.deep.equal(before);
  });

  it('a Secret named NAME-secrets that the operator did not make is neither read nor changed', async () => {
    const planted = '0123456789abcdef0123456789abcdef';
    await bed.apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'web-secrets' },
      stringData: { secrets: planted },
    });
    await bed.startOperator();
    await bed.applyProxy('web', { workers: 1 });
    const mtp = await bed.waitForCondition('web', 'Ready', 'False', 'Conflict');
    expect(mtp.status?.conditions?.find((c) => c.type === 'Ready')?.message).to.include(
      'Secret web-secrets already exists',
    );
    const secret = await bed.get<Obj>('secret', 'web-secrets');
    expect(secret.metadata.labels).to.equal(undefined);
    expect(secret.metadata.ownerReferences).to.equal(undefined);
    expect(await bed.find('secret', 'web-links'), 'no links made from a foreign Secret').to.equal(undefined);
  });

  it('switching its own PDB off deletes it; a PDB put in its place later is not touched', async () => {
    await bed.startOperator();
    await bed.applyProxy('web', { workers: 1, podDisruptionBudget: { enabled: true } });
    await eventually(async () => bed.get('poddisruptionbudget', 'web'));
    await bed.applyProxy('web', { workers: 1, podDisruptionBudget: { enabled: false } });
    await eventually(async () => expect(await bed.find('poddisruptionbudget', 'web')).to.equal(undefined));
    await bed.apply(tenantPdb);
    const before = await snapshot(bed, 'poddisruptionbudget', 'web');
    await bed.applyProxy('web', { workers: 2 });
    await eventually(async () => {
      const m = await bed.proxy('web');
      expect(m.status?.observedGeneration).to.equal(m.metadata.generation);
    });
    expect(await snapshot(bed, 'poddisruptionbudget', 'web')).to.deep.equal(before);
  });
});
