// What an MTProxy author can and cannot make the operator do: run another image, take the host
// network, pick a ServiceAccount, or have the operator read a Secret that was not meant for it.
import { expect } from 'chai';
import { defaultPolicy } from '../../operator/src/api/policy.js';
import { type DeploymentJson, freshTestBedPerTest, TEST_IMAGE, type TestBed } from './support/harness.js';

type PodSpecJson = DeploymentJson & {
  spec: { template: { spec: { hostNetwork?: boolean; serviceAccountName?: string } } };
};

describe('operator: least privilege for MTProxy authors', function () {
  this.timeout(90_000);
  let bed: TestBed;
  freshTestBedPerTest((b) => {
    bed = b;
  });

  it('by default refuses another image, the host network and a ServiceAccount of the author’s choice', async () => {
    await bed.startOperator({ policy: defaultPolicy(TEST_IMAGE) });
    await bed.applyProxy('miner', { image: 'evil.example/miner:1' });
    await bed.applyProxy('hostnet', { service: { hostNetwork: true } });
    await bed.applyProxy('sa', { podTemplate: { serviceAccountName: 'powerful' } });
    const reasons = async (name: string) => {
      const m = await bed.waitForCondition(name, 'Ready', 'False', 'NotAllowed');
      return m.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '';
    };
    expect(await reasons('miner')).to.include('spec.image: evil.example/miner:1 is not among the images');
    expect(await reasons('hostnet')).to.include('spec.service.hostNetwork');
    expect(await reasons('sa')).to.include('spec.podTemplate.serviceAccountName');
    for (const name of ['miner', 'hostnet', 'sa']) {
      expect(await bed.find('deployment', name), `no Deployment for ${name}`).to.equal(undefined);
    }
    expect(await bed.kubectlOk(['get', 'events', '--field-selector', 'reason=NotAllowed'])).to.include(
      'miner',
    );

    // The default image (any tag of its repository) is fine.
    await bed.applyProxy('ok', { image: TEST_IMAGE.replace(/:[^:/]+$/, ':other-tag') });
    await bed.waitForCondition('ok', 'Degraded', 'False');
  });

  it('an administrator can allow the host network and pin the proxies’ ServiceAccount', async () => {
    await bed.kubectlOk(['create', 'serviceaccount', 'mtproxy-pods']);
    await bed.startOperator({
      policy: { ...defaultPolicy(TEST_IMAGE), allowHostNetwork: true, serviceAccount: 'mtproxy-pods' },
    });
    await bed.applyProxy('edge', { service: { hostNetwork: true }, port: 8443 });
    await bed.waitForCondition('edge', 'Degraded', 'False');
    const pod = (await bed.get<PodSpecJson>('deployment', 'edge')).spec.template.spec;
    expect(pod.hostNetwork).to.equal(true);
    expect(pod.serviceAccountName).to.equal('mtproxy-pods');
  });

  it('reads a Secret named in the spec only when the Secret allows this MTProxy', async () => {
    const value = 'c0ffee00c0ffee00c0ffee00c0ffee00';
    await bed.kubectlOk(['create', 'secret', 'generic', 'db-password', `--from-literal=secrets=${value}`]);
    await bed.startOperator({ policy: defaultPolicy(TEST_IMAGE) });
    await bed.applyProxy('tg', { secrets: { existingSecretName: 'db-password' } });
    const m = await bed.waitForCondition('tg', 'SecretsReady', 'False', 'SecretNotAllowed');
    expect(m.status?.conditions?.find((c) => c.type === 'SecretsReady')?.message).to.include(
      'mtkube.dev/allowed-mtproxies=tg',
    );
    expect(await bed.find('deployment', 'tg'), 'no pod gets the Secret').to.equal(undefined);
    expect(await bed.find('secret', 'tg-links'), 'no links made from it').to.equal(undefined);
    const seen = JSON.stringify(m.status) + (await bed.kubectlOk(['get', 'events', '-o', 'json']));
    expect(seen).to.not.include(value);

    // Its owner says this MTProxy may use it: the proxy proceeds.
    await bed.kubectlOk(['annotate', 'secret', 'db-password', 'mtkube.dev/allowed-mtproxies=other,tg']);
    await bed.waitForCondition('tg', 'SecretsReady', 'True', undefined, 60_000);
    await bed.get('deployment', 'tg');
  });

  it('an ad tag and a users Secret from an unmarked Secret are refused the same way', async () => {
    await bed.kubectlOk(['create', 'secret', 'generic', 'tag', `--from-literal=tag=${'ab'.repeat(16)}`]);
    await bed.kubectlOk(['create', 'secret', 'generic', 'people', `--from-literal=alice=${'cd'.repeat(16)}`]);
    await bed.startOperator({ policy: defaultPolicy(TEST_IMAGE) });
    await bed.applyProxy('t', { adTag: { secretKeyRef: { name: 'tag' } } });
    await bed.applyProxy('u', { usersSecretName: 'people', users: [{ name: 'alice' }] });
    await bed.waitForCondition('t', 'Degraded', 'True', 'SecretNotAllowed');
    await bed.waitForCondition('u', 'UsersReady', 'False', 'SecretNotAllowed');
  });
});
