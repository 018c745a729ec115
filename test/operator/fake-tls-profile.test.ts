// spec.fakeTLS.profile against the real API server: the schema takes it, every pod is told how
// to measure, and the FakeTLSProfile condition says how the answers are shaped.
import { expect } from 'chai';
import { type DeploymentJson, envOf, freshTestBedPerTest, type TestBed } from './support/harness.js';

describe('operator: spec.fakeTLS.profile', function () {
  this.timeout(120_000);
  let bed: TestBed;
  freshTestBedPerTest((b) => {
    bed = b;
  });

  it('tells every pod to measure the mask target, and reports it in FakeTLSProfile', async () => {
    await bed.startOperator();
    await bed.applyProxy('tg', {
      fakeTLS: {
        domain: 'example.com',
        mask: { host: 'site.example', port: 8443 },
        profile: { refreshInterval: '2h' },
      },
      publicAddress: { host: 'proxy.example.com' },
    });
    const mtp = await bed.waitForCondition('tg', 'FakeTLSProfile', 'True');
    const condition = mtp.status?.conditions?.find((c) => c.type === 'FakeTLSProfile');
    expect(condition?.reason).to.equal('MeasuredByEachPod');
    expect(condition?.message).to.contain('site.example:8443').and.contain('every 2 h');
    const env = envOf(await bed.get<DeploymentJson>('deployment', 'tg'));
    expect(env.FAKE_TLS_PROFILE?.value).to.equal('auto');
    expect(env.FAKE_TLS_PROFILE_REFRESH?.value).to.equal('7200');

    await bed.applyProxy('tg', {
      fakeTLS: { domain: 'example.com', profile: { mode: 'off' } },
      publicAddress: { host: 'proxy.example.com' },
    });
    const off = await bed.waitForCondition('tg', 'FakeTLSProfile', 'False');
    expect(off.status?.conditions?.find((c) => c.type === 'FakeTLSProfile')?.reason).to.equal('ProfileOff');
  });

  it('the API server refuses an unknown profile mode, naming the field', async () => {
    const result = await bed.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'mtkube.dev/v1alpha1',
        kind: 'MTProxy',
        metadata: { name: 'bad' },
        spec: { fakeTLS: { domain: 'example.com', profile: { mode: 'sometimes' } } },
      }),
    );
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.match(/spec\.fakeTLS\.profile\.mode: Unsupported value: "sometimes"/);
  });
});
