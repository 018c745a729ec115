// spec.fakeTLS.profile: what the pods are told (FAKE_TLS_PROFILE, FAKE_TLS_PROFILE_REFRESH) and
// the FakeTLSProfile condition that says how the answers are shaped and where the pods report it.
import { expect } from 'chai';
import { resolveSpec, SpecError } from '../../../operator/src/api/defaults.js';
import type { MTProxy, MTProxySpec } from '../../../operator/src/api/types.js';
import { renderDeployment } from '../../../operator/src/render/deployment.js';
import type { EnvVar } from '../../../operator/src/render/env.js';
import { fakeTlsProfileCondition } from '../../../operator/src/render/status.js';

const settings = (spec: MTProxySpec) => resolveSpec(spec, { defaultImage: 'example/proxy:1' });

function env(spec: MTProxySpec): Record<string, string | undefined> {
  const mtp: MTProxy = {
    apiVersion: 'mtkube.dev/v1alpha1',
    kind: 'MTProxy',
    metadata: { name: 'tg', namespace: 'proxies', uid: 'uid-1', generation: 1 },
    spec,
  };
  const dep = renderDeployment(mtp, 'tg', settings(spec), {
    secretsRef: { name: 'tg-secrets', key: 'secrets' },
    usersSecretName: undefined,
    loadBalancerIP: undefined,
    secretsChecksum: 'abc',
    restartedAt: undefined,
  }) as unknown as { spec: { template: { spec: { containers: { env: EnvVar[] }[] } } } };
  return Object.fromEntries(dep.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value]));
}

describe('spec.fakeTLS.profile', () => {
  it('measures by default, and tells each pod the refresh interval given', () => {
    expect(env({ fakeTLS: { domain: 'example.com' } })).to.include({ FAKE_TLS_PROFILE: 'auto' });
    expect(
      env({ fakeTLS: { domain: 'example.com', profile: { mode: 'auto', refreshInterval: '2h' } } }),
    ).to.include({ FAKE_TLS_PROFILE: 'auto', FAKE_TLS_PROFILE_REFRESH: '7200' });
    expect(env({ fakeTLS: { domain: 'example.com', profile: { mode: 'off' } } })).to.include({
      FAKE_TLS_PROFILE: 'off',
    });
    expect(env({})).to.not.have.property('FAKE_TLS_PROFILE');
  });

  it('refuses a refresh interval that is not a duration or outside 1m..168h, naming the field', () => {
    for (const refreshInterval of ['soon', '10s', '30d']) {
      expect(() => settings({ fakeTLS: { domain: 'example.com', profile: { refreshInterval } } }))
        .to.throw(SpecError)
        .with.property('message')
        .that.matches(/spec\.fakeTLS\.profile\.refreshInterval/);
    }
  });

  it('reports how answers are shaped in the FakeTLSProfile condition', () => {
    const c = (spec: MTProxySpec) => fakeTlsProfileCondition(settings(spec));
    expect(c({})).to.equal(undefined);
    const measured = c({ fakeTLS: { domain: 'example.com', mask: { host: 'site.example', port: 8443 } } });
    expect(measured).to.include({ status: 'True', reason: 'MeasuredByEachPod' });
    expect(measured?.message).to.contain('site.example:8443').and.contain('every 6 h');
    expect(c({ fakeTLS: { domain: 'example.com', profile: { mode: 'off' } } })).to.include({
      status: 'False',
      reason: 'ProfileOff',
    });
    expect(c({ fakeTLS: { domain: 'example.com', mask: { enabled: false } } })).to.include({
      status: 'False',
      reason: 'MaskingOff',
    });
  });
});
