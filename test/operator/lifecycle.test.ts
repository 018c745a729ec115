// An MTProxy's life against the real API server: created, edited, tampered with, and deleted,
// while the operator (in this process) watches its namespace.
import { expect } from 'chai';
import { eventually } from '../cluster/eventually.js';
import {
  crdPath,
  type DeploymentJson,
  envOf,
  freshTestBedPerTest,
  type JsonObject,
  TEST_IMAGE,
  type TestBed,
} from './support/harness.js';

const HEX32 = /^[0-9a-f]{32}$/;

describe('operator: an MTProxy from creation to deletion', function () {
  this.timeout(120_000);
  let bed: TestBed;
  freshTestBedPerTest((b) => {
    bed = b;
  });

  it('creating an MTProxy brings its Secret, links, Deployment and Services, and a Ready status', async () => {
    await bed.startOperator();
    await bed.applyProxy('tg', { replicas: 2, publicAddress: { host: 'proxy.example.com' } });

    const mtp = await bed.waitForCondition('tg', 'Ready', 'True');
    const secrets = (await bed.secretData('tg-secrets')).secrets!.split(',');
    expect(secrets).to.have.length(1);
    expect(secrets[0]).to.match(HEX32);

    const links = await bed.secretData('tg-links');
    expect(links['links.txt']).to.include(
      `tg://proxy?server=proxy.example.com&port=443&secret=dd${secrets[0]}`,
    );
    expect(links['links.txt']).to.include(
      `https://t.me/proxy?server=proxy.example.com&port=443&secret=dd${secrets[0]}`,
    );

    const dep = await bed.get<DeploymentJson>('deployment', 'tg');
    expect(dep.spec.replicas).to.equal(2);
    expect(dep.spec.template.spec.containers[0]!.image).to.equal(TEST_IMAGE);
    expect(envOf(dep).SECRET?.valueFrom).to.deep.equal({
      secretKeyRef: { name: 'tg-secrets', key: 'secrets' },
    });
    expect(dep.metadata.ownerReferences?.[0]).to.include({
      kind: 'MTProxy',
      name: 'tg',
      uid: mtp.metadata.uid,
    });

    const svc = await bed.get<JsonObject & { spec: { type: string; ports: { port: number }[] } }>(
      'service',
      'tg',
    );
    expect(svc.spec.type).to.equal('LoadBalancer');
    expect(svc.spec.ports[0]?.port).to.equal(443);
    await bed.get('service', 'tg-metrics');

    expect(mtp.status).to.deep.include({
      replicas: 2,
      readyReplicas: 2,
      mode: 'direct',
      secretName: 'tg-secrets',
      linksSecretName: 'tg-links',
      secretsCount: 1,
      endpoints: [{ host: 'proxy.example.com', port: 443 }],
      selector: 'app.kubernetes.io/name=mtproxy,app.kubernetes.io/instance=tg',
    });
    const conditions = Object.fromEntries((mtp.status?.conditions ?? []).map((c) => [c.type, c.status]));
    expect(conditions).to.deep.equal({
      Ready: 'True',
      Progressing: 'False',
      Degraded: 'False',
      SecretsReady: 'True',
      ExternalAddressResolved: 'False',
    });
    // Nothing secret in status or events.
    const events = await bed.kubectlOk(['get', 'events', '-o', 'json']);
    for (const text of [JSON.stringify(mtp.status), events]) expect(text).to.not.include(secrets[0]);
    expect(events).to.include('SecretsGenerated');

    // kubectl get shows the printer columns.
    const table = await bed.kubectlOk(['get', 'mtp', 'tg']);
    expect(table).to.match(/NAME\s+READY\s+REPLICAS\s+AVAILABLE\s+MODE\s+ENDPOINT/);
    expect(table).to.match(/tg\s+True\s+2\s+2\s+direct\s+proxy\.example\.com/);
  });

  it('the API server rejects an invalid MTProxy with messages that name the fields', async () => {
    const result = await bed.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'mtkube.dev/v1alpha1',
        kind: 'MTProxy',
        metadata: { name: 'bad' },
        spec: {
          secrets: { count: 17 },
          adTag: { value: 'not-a-tag' },
          upstream: { mode: 'direct' },
          modes: ['tls'],
          restart: { enabled: true, schedule: '25:61' },
        },
      }),
    );
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.match(/spec\.secrets\.count: Invalid value: 17/);
    expect(result.stderr).to.match(/spec\.adTag\.value: Invalid value/);
    expect(result.stderr).to.match(/spec\.restart\.schedule/);
    expect(result.stderr).to.include('the tls mode needs fakeTLS.domain');
    expect(await bed.find('mtproxy', 'bad')).to.equal(undefined);

    const directWithTag = await bed.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'mtkube.dev/v1alpha1',
        kind: 'MTProxy',
        metadata: { name: 'bad2' },
        spec: { adTag: { value: 'ab'.repeat(16) }, upstream: { mode: 'direct' } },
      }),
    );
    expect(directWithTag.stderr).to.include('an ad tag needs the middle proxy');
  });

  it('accepts the examples in crds/examples', async () => {
    const dir = crdPath.replace(/mtkube\.dev_mtproxies\.yaml$/, 'examples');
    const out = await bed.kubectlOk(['apply', '--dry-run=server', '-f', dir]);
    expect(out.trim().split('\n')).to.have.length(4);
  });

  it('reports what the schema cannot catch (an unknown time zone) as Degraded InvalidSpec', async () => {
    await bed.startOperator();
    await bed.applyProxy('tg', { restart: { enabled: true, timeZone: 'Mars/Olympus_Mons' } });
    const mtp = await bed.waitForCondition('tg', 'Degraded', 'True', 'InvalidSpec');
    expect(mtp.status?.conditions?.find((c) => c.type === 'Degraded')?.message).to.include('spec.restart');
    expect(await bed.find('deployment', 'tg')).to.equal(undefined);
    await bed.applyProxy('tg', { restart: { enabled: true, timeZone: 'Asia/Tokyo' } });
    await bed.waitForCondition('tg', 'Ready', 'True');
  });

  it('an operator restart, a spec edit and a higher count keep the secrets already given out', async () => {
    let op = await bed.startOperator();
    await bed.applyProxy('tg', { publicAddress: { host: 'p.example.com' } });
    await bed.waitForCondition('tg', 'SecretsReady', 'True');
    const original = (await bed.secretData('tg-secrets')).secrets!;

    await bed.stopOperator(op);
    op = await bed.startOperator();
    await bed.applyProxy('tg', {
      publicAddress: { host: 'p.example.com' },
      workers: 3,
      secrets: { count: 3 },
    });
    await eventually(async () => {
      const now = (await bed.secretData('tg-secrets')).secrets!.split(',');
      expect(now).to.have.length(3);
      expect(now[0]).to.equal(original);
    });
    await bed.waitForCondition('tg', 'Ready', 'True');
    const links = (await bed.secretData('tg-links'))['links.txt']!;
    expect(links.match(/^secret\d dd tg:/gm)).to.have.length(3);
  });

  it('uses an existing Secret the user manages instead of generating one', async () => {
    const shared = ['00112233445566778899aabbccddeeff', 'ffeeddccbbaa99887766554433221100'];
    await bed.kubectlOk([
      'create',
      'secret',
      'generic',
      'shared-secrets',
      `--from-literal=list=${shared.join(',')}`,
    ]);
    // Shared by several proxies: the annotation says which may use it (any of them here).
    await bed.kubectlOk(['annotate', 'secret', 'shared-secrets', 'mtkube.dev/allowed-mtproxies=*']);
    await bed.startOperator();
    await bed.applyProxy('tg', {
      secrets: { existingSecretName: 'shared-secrets', existingSecretKey: 'list' },
      publicAddress: { host: 'p.example.com', port: 8443 },
    });
    const mtp = await bed.waitForCondition('tg', 'Ready', 'True');
    expect(mtp.status?.secretName).to.equal('shared-secrets');
    expect(mtp.status?.secretsCount).to.equal(2);
    expect(await bed.find('secret', 'tg-secrets'), 'nothing generated').to.equal(undefined);
    const dep = await bed.get<DeploymentJson>('deployment', 'tg');
    expect(envOf(dep).SECRET?.valueFrom).to.deep.equal({
      secretKeyRef: { name: 'shared-secrets', key: 'list' },
    });
    const links = (await bed.secretData('tg-links'))['links.txt']!;
    expect(links).to.include(`server=p.example.com&port=8443&secret=dd${shared[1]}`);
  });

  it('reports a missing existing Secret, and recovers when it appears', async () => {
    await bed.startOperator();
    await bed.applyProxy('tg', { secrets: { existingSecretName: 'later' } });
    await bed.waitForCondition('tg', 'SecretsReady', 'False', 'SecretNotFound');
    await bed.waitForCondition('tg', 'Degraded', 'True', 'SecretNotFound');
    expect(await bed.find('deployment', 'tg'), 'no pods that could not start').to.equal(undefined);
    await bed.kubectlOk([
      'create',
      'secret',
      'generic',
      'later',
      `--from-literal=secrets=${'ab'.repeat(16)}`,
    ]);
    // Labelled, so the change is seen at once rather than at the next resync.
    await bed.kubectlOk(['label', 'secret', 'later', 'mtkube.dev/mtproxy=tg']);
    await bed.waitForCondition('tg', 'SecretsReady', 'True');
    await bed.get('deployment', 'tg');
  });

  it('shows the ad tag active only once the middle proxies can be told the public IP', async () => {
    await bed.startOperator();
    const tag = 'AB'.repeat(16);
    await bed.applyProxy('lb', { adTag: { value: tag } });
    await bed.applyProxy('ip', { adTag: { value: tag }, publicAddress: { externalIP: '203.0.113.7' } });
    await bed.waitForCondition('lb', 'AdTagActive', 'False', 'ExternalAddressUnresolved');
    await bed.waitForCondition('lb', 'ExternalAddressResolved', 'False', 'WaitingForLoadBalancer');
    const ip = await bed.waitForCondition('ip', 'AdTagActive', 'True', 'MiddleProxy');
    expect(ip.status).to.deep.include({ mode: 'middle', externalIP: '203.0.113.7' });
    const env = envOf(await bed.get<DeploymentJson>('deployment', 'ip'));
    expect(env.TAG?.value).to.equal(tag.toLowerCase());
    expect(env.EXTERNAL_IP?.value).to.equal('203.0.113.7');
    expect(env.MODE?.value).to.equal('auto');
  });

  it('a spec change re-renders the Deployment and rolls the pods', async () => {
    await bed.startOperator();
    await bed.applyProxy('tg', {});
    await bed.waitForCondition('tg', 'Ready', 'True');
    await bed.applyProxy('tg', {
      workers: 4,
      service: { type: 'ClusterIP' },
      podTemplate: { labels: { team: 'net' } },
    });
    await eventually(async () => {
      const dep = await bed.get<DeploymentJson>('deployment', 'tg');
      expect(envOf(dep).WORKERS?.value).to.equal('4');
      expect(dep.spec.template.metadata.labels.team).to.equal('net');
      const svc = await bed.get<{ spec: { type: string } }>('service', 'tg');
      expect(svc.spec.type).to.equal('ClusterIP');
    });
    await eventually(async () => {
      expect(await bed.list('replicasets', 'app.kubernetes.io/instance=tg')).to.have.length(2);
    });
    await bed.waitForCondition('tg', 'Ready', 'True');
  });

  it('a hand edit of the Deployment is reverted', async () => {
    await bed.startOperator();
    await bed.applyProxy('tg', { replicas: 2 });
    await bed.waitForCondition('tg', 'Ready', 'True');
    await bed.kubectlOk(['set', 'image', 'deployment/tg', 'proxy=example.invalid/tampered:1']);
    await bed.kubectlOk(['scale', 'deployment/tg', '--replicas=5']);
    await eventually(async () => {
      const dep = await bed.get<DeploymentJson>('deployment', 'tg');
      expect(dep.spec.template.spec.containers[0]!.image).to.equal(TEST_IMAGE);
      expect(dep.spec.replicas).to.equal(2);
    });
  });

  it('kubectl scale on the MTProxy scales the proxy (scale subresource)', async () => {
    await bed.startOperator();
    await bed.applyProxy('tg', {});
    await bed.waitForCondition('tg', 'Ready', 'True');
    await bed.kubectlOk(['scale', 'mtproxy/tg', '--replicas=3']);
    await eventually(async () => {
      expect((await bed.get<DeploymentJson>('deployment', 'tg')).spec.replicas).to.equal(3);
    });
    const mtp = await bed.waitForCondition('tg', 'Ready', 'True');
    expect(mtp.status?.readyReplicas).to.equal(3);
  });

  it('deleting the MTProxy removes its children but keeps the generated secrets by default', async () => {
    await bed.startOperator();
    await bed.applyProxy('kept', {});
    await bed.applyProxy('gone', { secrets: { retentionPolicy: 'Delete' } });
    await bed.waitForCondition('kept', 'Ready', 'True');
    await bed.waitForCondition('gone', 'Ready', 'True');
    const keptSecret = (await bed.secretData('kept-secrets')).secrets;

    await bed.kubectlOk(['delete', 'mtproxy', 'kept', 'gone', '--wait=true']);
    await eventually(
      async () => {
        for (const name of ['kept', 'gone']) {
          expect(await bed.find('deployment', name), `deployment ${name}`).to.equal(undefined);
          expect(await bed.find('service', name), `service ${name}`).to.equal(undefined);
          expect(await bed.find('service', `${name}-metrics`)).to.equal(undefined);
          expect(await bed.find('secret', `${name}-links`)).to.equal(undefined);
        }
        expect(await bed.find('secret', 'gone-secrets'), 'retention Delete').to.equal(undefined);
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect((await bed.secretData('kept-secrets')).secrets, 'retention Retain').to.equal(keptSecret);

    // Recreated under the same name, it serves the same secrets: the links shared before still work.
    await bed.applyProxy('kept', {});
    await bed.waitForCondition('kept', 'Ready', 'True');
    expect((await bed.secretData('kept-secrets')).secrets).to.equal(keptSecret);
  });

  it('rolls the pods when the secrets change (checksum annotation)', async () => {
    await bed.kubectlOk(['create', 'secret', 'generic', 'mine', `--from-literal=secrets=${'01'.repeat(16)}`]);
    await bed.kubectlOk(['label', 'secret', 'mine', 'mtkube.dev/mtproxy=tg']);
    await bed.startOperator();
    await bed.applyProxy('tg', { secrets: { existingSecretName: 'mine' } });
    await bed.waitForCondition('tg', 'Ready', 'True');
    const before = (await bed.get<DeploymentJson>('deployment', 'tg')).spec.template.metadata.annotations?.[
      'mtkube.dev/secrets-checksum'
    ];
    await bed.kubectlOk(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'mine', labels: { 'mtkube.dev/mtproxy': 'tg' } },
        stringData: { secrets: `${'01'.repeat(16)},${'02'.repeat(16)}` },
      }),
    );
    await eventually(async () => {
      const dep = await bed.get<DeploymentJson>('deployment', 'tg');
      expect(dep.spec.template.metadata.annotations?.['mtkube.dev/secrets-checksum']).to.not.equal(before);
    });
    await eventually(async () => expect((await bed.proxy('tg')).status?.secretsCount).to.equal(2));
  });
});
