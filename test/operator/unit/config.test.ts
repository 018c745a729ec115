import { expect } from 'chai';
import { imageAllowed } from '../../../operator/src/api/policy.js';
import { helpText, OperatorConfigError, parseOperatorConfig } from '../../../operator/src/config.js';
import { describePermission, requiredPermissions } from '../../../operator/src/preflight.js';

const noCluster = () => undefined;

describe('operator configuration', () => {
  it('runs cluster-wide with leader election and port 8080 by default', () => {
    const c = parseOperatorConfig({}, [], noCluster);
    expect(c).to.deep.include({
      namespaces: [],
      leaderElect: true,
      leaseNamespace: 'default',
      leaseName: 'mtkube-operator',
      metricsPort: 8080,
      logLevel: 'info',
      resyncPeriodMs: 300_000,
      concurrency: 2,
    });
  });

  it('reads the environment, and the command line wins', () => {
    const c = parseOperatorConfig(
      {
        WATCH_NAMESPACES: 'proxies, edge',
        LEADER_ELECT: 'false',
        METRICS_PORT: '9000',
        LOG_LEVEL: 'DEBUG',
        DEFAULT_PROXY_IMAGE: 'example/proxy:2',
        RESYNC_PERIOD: '90s',
      },
      ['--metrics-port', '9100', '--lease-name', 'other'],
      noCluster,
    );
    expect(c).to.deep.include({
      namespaces: ['proxies', 'edge'],
      leaderElect: false,
      metricsPort: 9100,
      leaseName: 'other',
      logLevel: 'debug',
      defaultProxyImage: 'example/proxy:2',
      resyncPeriodMs: 90_000,
    });
  });

  it("keeps its Lease in the pod's own namespace when running in a cluster", () => {
    expect(parseOperatorConfig({}, [], () => 'mtkube-system').leaseNamespace).to.equal('mtkube-system');
    expect(
      parseOperatorConfig({ LEASE_NAMESPACE: 'ops' }, [], () => 'mtkube-system').leaseNamespace,
    ).to.equal('ops');
  });

  it('names the setting that is wrong', () => {
    const cases: [Record<string, string>, string[], RegExp][] = [
      [{ LEADER_ELECT: 'maybe' }, [], /LEADER_ELECT/],
      [{ METRICS_PORT: '70000' }, [], /METRICS_PORT/],
      [{ WATCH_NAMESPACES: 'Bad_NS' }, [], /WATCH_NAMESPACES/],
      [{ RESYNC_PERIOD: '5 minutes' }, [], /RESYNC_PERIOD/],
      [{}, ['--no-such-flag'], /command line/],
    ];
    for (const [env, argv, message] of cases) {
      expect(() => parseOperatorConfig(env, argv, noCluster)).to.throw(OperatorConfigError, message);
    }
  });

  it('documents every option in --help', () => {
    const help = helpText();
    for (const name of [
      'WATCH_NAMESPACES',
      'LEADER_ELECT',
      'LEASE_NAMESPACE',
      'METRICS_PORT',
      'DEFAULT_PROXY_IMAGE',
    ]) {
      expect(help).to.include(name);
    }
  });
});

describe('preflight permissions', () => {
  it('asks for what the operator does, and the Lease only in its namespace', () => {
    const perms = requiredPermissions('proxies', 'ops').map(describePermission);
    expect(perms).to.include.members([
      'watch mtproxies.mtkube.dev in proxies',
      'patch mtproxies/status.mtkube.dev in proxies',
      'patch deployments.apps in proxies',
      'create secrets in proxies',
      'create events in proxies',
      'update leases.coordination.k8s.io in ops',
    ]);
    expect(
      perms.some((p) => p.startsWith('delete secrets')),
      'never deletes a Secret',
    ).to.equal(false);
    expect(requiredPermissions(undefined).map(describePermission)).to.include(
      'list secrets (all namespaces)',
    );
  });
});

describe('operator: the policy settings', () => {
  it('defaults to the default image repository, no host network and no ServiceAccount from the spec', () => {
    const c = parseOperatorConfig(
      { DEFAULT_PROXY_IMAGE: 'registry.local:5000/mt/proxy:1.2' },
      [],
      () => undefined,
    );
    expect(c.policy).to.deep.equal({
      allowedImages: ['registry.local:5000/mt/proxy'],
      allowHostNetwork: false,
      serviceAccount: undefined,
      allowServiceAccountFromSpec: false,
    });
  });

  it('reads ALLOWED_IMAGES, ALLOW_HOST_NETWORK and PROXY_SERVICE_ACCOUNT (flags win)', () => {
    const c = parseOperatorConfig(
      { ALLOWED_IMAGES: 'a/b, c/*', ALLOW_HOST_NETWORK: 'true' },
      ['--proxy-service-account', 'mtproxy-pods'],
      () => undefined,
    );
    expect(c.policy).to.deep.include({
      allowedImages: ['a/b', 'c/*'],
      allowHostNetwork: true,
      serviceAccount: 'mtproxy-pods',
    });
    expect(() => parseOperatorConfig({ PROXY_SERVICE_ACCOUNT: 'Not A Name' }, [], () => undefined)).to.throw(
      /PROXY_SERVICE_ACCOUNT/,
    );
  });

  it('matches images by repository, exact reference, prefix or *', () => {
    expect(imageAllowed('ghcr.io/mtkube/mtproxy:0.2', ['ghcr.io/mtkube/mtproxy'])).to.equal(true);
    expect(imageAllowed('ghcr.io/mtkube/mtproxy@sha256:ab', ['ghcr.io/mtkube/mtproxy'])).to.equal(true);
    expect(imageAllowed('ghcr.io/mtkube/mtproxy-evil:1', ['ghcr.io/mtkube/mtproxy'])).to.equal(false);
    expect(imageAllowed('ghcr.io/mtkube/x:1', ['ghcr.io/mtkube/*'])).to.equal(true);
    expect(imageAllowed('docker.io/x:1', ['ghcr.io/mtkube/*'])).to.equal(false);
    expect(imageAllowed('anything', ['*'])).to.equal(true);
  });
});
