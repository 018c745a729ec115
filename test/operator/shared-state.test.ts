// spec.sharedState against a real API server: the replicas get STATE_URL from the Secret you name,
// or a managed Redis (Deployment, claim, Service, password Secret) is run for them; a single pod
// with quotas keeps /data on a claim; quotas over several replicas without a store are reported.
import { expect } from 'chai';
import type { MTProxyUser } from '../../operator/src/api/types.js';
import { parseUsersFile } from '../../proxy/src/users/users-file.js';
import { type DeploymentJson, envOf, freshTestBedPerTest, type TestBed } from './support/harness.js';

const metered: MTProxyUser = { name: 'alice', quota: '50GiB', quotaPeriod: 'monthly', maxConnections: 3 };

describe('operator: shared state for replicas, and quotas that outlive a pod', function () {
  this.timeout(120_000);
  let bed: TestBed;
  freshTestBedPerTest((b) => {
    bed = b;
  });

  it('sharedState.redis.urlSecretRef: every replica reads STATE_URL from that Secret; SharedStateReady follows it', async () => {
    await bed.startOperator();
    await bed.applyProxy('tg', {
      replicas: 3,
      users: [metered],
      quotaTimeZone: 'Europe/Berlin',
      sharedState: { redis: { urlSecretRef: { name: 'store', key: 'url' } }, limitsFallback: 'refuse' },
    });
    await bed.waitForCondition('tg', 'SharedStateReady', 'False', 'StoreSecretNotFound');
    const store = (annotations: Record<string, string>) =>
      bed.apply({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'store', annotations },
        stringData: { url: 'redis://:pw@redis.example:6379/0' },
      });
    // A Secret the operator does not own wakes no reconcile; a spec change does.
    const touch = (logLevel: 'debug' | 'info') =>
      bed.applyProxy('tg', {
        replicas: 3,
        users: [metered],
        quotaTimeZone: 'Europe/Berlin',
        sharedState: { redis: { urlSecretRef: { name: 'store', key: 'url' } }, limitsFallback: 'refuse' },
        logLevel,
      });
    // Named in the spec but not allowing this MTProxy: the operator does not hand it to the pods.
    await store({});
    await touch('debug');
    await bed.waitForCondition('tg', 'SharedStateReady', 'False', 'SecretNotAllowed');
    await store({ 'mtkube.dev/allowed-mtproxies': 'tg' });
    await touch('info');
    await bed.waitForCondition('tg', 'SharedStateReady', 'True', 'External');
    const env = envOf(await bed.get<DeploymentJson>('deployment', 'tg'));
    expect(env.STATE_URL?.valueFrom?.secretKeyRef).to.deep.equal({ name: 'store', key: 'url' });
    expect(env.STATE_REPLICAS?.value).to.equal('3');
    expect(env.STATE_LIMITS_FALLBACK?.value).to.equal('refuse');
    expect(env.QUOTA_TIME_ZONE?.value).to.equal('Europe/Berlin');
    const users = parseUsersFile((await bed.secretData('tg-users'))['users.yaml']!);
    expect(users[0]!.limits.quotaPeriod).to.equal('monthly');
  });

  it('sharedState.managed: a hardened Redis with a claim, a Service and a generated password', async () => {
    await bed.startOperator();
    await bed.applyProxy('tg', { replicas: 2, users: [metered], sharedState: { managed: true } });
    await bed.waitForCondition('tg', 'SharedStateReady', 'False', 'ManagedRedisNotReady');
    const redis = await bed.get<DeploymentJson>('deployment', 'tg-redis');
    const pod = redis.spec.template.spec as unknown as {
      automountServiceAccountToken: boolean;
      securityContext: { runAsNonRoot: boolean; seccompProfile: { type: string } };
      containers: { args: string[]; securityContext: Record<string, unknown>; env: unknown[] }[];
      volumes: { name: string; persistentVolumeClaim?: { claimName: string } }[];
    };
    expect(pod.automountServiceAccountToken).to.equal(false);
    expect(pod.securityContext.runAsNonRoot).to.equal(true);
    expect(pod.securityContext.seccompProfile.type).to.equal('RuntimeDefault');
    expect(pod.containers[0]!.securityContext).to.deep.include({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(pod.containers[0]!.args).to.include('$(REDIS_PASSWORD)');
    expect(pod.volumes).to.deep.include({
      name: 'data',
      persistentVolumeClaim: { claimName: 'tg-redis-data' },
    });
    expect(await bed.find('pvc', 'tg-redis-data')).to.not.equal(undefined);
    const service = await bed.get<{ spec: { selector: Record<string, string> } }>('service', 'tg-redis');
    const proxyService = await bed.get<{ spec: { selector: Record<string, string> } }>('service', 'tg');
    expect(service.spec.selector).to.not.deep.equal(proxyService.spec.selector);
    const state = await bed.secretData('tg-state');
    expect(state.password).to.match(/^[0-9a-f]{48}$/);
    expect(state.url).to.match(new RegExp(`^redis://:${state.password}@tg-redis\\.[a-z0-9-]+\\.svc:6379/0$`));
    const env = envOf(await bed.get<DeploymentJson>('deployment', 'tg'));
    expect(env.STATE_URL?.valueFrom?.secretKeyRef).to.deep.equal({ name: 'tg-state', key: 'url' });
    // The password is generated once and kept.
    await bed.applyProxy('tg', {
      replicas: 2,
      users: [metered],
      sharedState: { managed: true },
      logLevel: 'debug',
    });
    await bed.waitForCondition('tg', 'SharedStateReady', 'False', 'ManagedRedisNotReady');
    expect((await bed.secretData('tg-state')).password).to.equal(state.password);
  });

  it('quotas over two replicas without a store are reported; one replica with quotas gets a claim for /data', async () => {
    await bed.startOperator();
    await bed.applyProxy('many', { replicas: 2, users: [metered] });
    const m = await bed.waitForCondition('many', 'SharedStateReady', 'False', 'QuotasPerPod');
    expect(m.status?.conditions?.find((c) => c.type === 'SharedStateReady')?.message).to.include(
      'spec.sharedState',
    );
    await bed.applyProxy('one', { replicas: 1, users: [metered] });
    // No storage provisioner here, so the pod never starts; the rendered objects are what counts.
    await bed.waitForCondition('one', 'SecretsReady', 'True');
    const dep = await bed.get<DeploymentJson>('deployment', 'one');
    expect((dep.spec as unknown as { strategy: { type: string } }).strategy.type).to.equal('Recreate');
    expect(dep.spec.template.spec.volumes).to.deep.include({
      name: 'data',
      persistentVolumeClaim: { claimName: 'one-data' },
    });
    expect(await bed.find('pvc', 'one-data')).to.not.equal(undefined);
  });
});
