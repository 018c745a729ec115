import { expect } from 'chai';
import { type ProxySettings, resolveSpec, SpecError } from '../../../operator/src/api/defaults.js';
import type { MTProxy, MTProxySpec } from '../../../operator/src/api/types.js';
import { renderDeployment } from '../../../operator/src/render/deployment.js';
import type { EnvVar } from '../../../operator/src/render/env.js';
import { ANNOTATIONS } from '../../../operator/src/render/meta.js';
import { proxyConfigProblem } from '../../../operator/src/render/proxy-contract.js';
import {
  renderClientService,
  renderMetricsService,
  renderPodDisruptionBudget,
  renderServiceMonitor,
} from '../../../operator/src/render/service.js';

const mtp = (spec: MTProxySpec = {}): MTProxy => ({
  apiVersion: 'mtkube.dev/v1alpha1',
  kind: 'MTProxy',
  metadata: { name: 'tg', namespace: 'proxies', uid: 'uid-1', generation: 1 },
  spec,
});

const settings = (spec: MTProxySpec = {}): ProxySettings =>
  resolveSpec(spec, { defaultImage: 'example/proxy:1' });

function deploy(spec: MTProxySpec = {}, restartedAt?: string) {
  return renderDeployment(mtp(spec), 'tg', settings(spec), {
    secretsRef: { name: 'tg-secrets', key: 'secrets' },
    usersSecretName: undefined,
    loadBalancerIP: undefined,
    secretsChecksum: 'abc',
    restartedAt,
  });
}

interface Container {
  env: EnvVar[];
  ports: { name: string; containerPort: number; hostPort?: number }[];
  securityContext: {
    capabilities: { drop: string[]; add?: string[] };
    readOnlyRootFilesystem: boolean;
    runAsUser?: number;
    runAsNonRoot?: boolean;
    allowPrivilegeEscalation?: boolean;
  };
  readinessProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  resources?: unknown;
}

function container(spec: MTProxySpec = {}): Container {
  return (deploy(spec).spec.template.spec.containers as unknown as Container[])[0]!;
}

function env(spec: MTProxySpec = {}): Record<string, EnvVar> {
  return Object.fromEntries(container(spec).env.map((e) => [e.name, e]));
}

describe('spec defaults', () => {
  it('goes direct without an ad tag and through the middle proxies with one', () => {
    expect(settings().effectiveMode).to.equal('direct');
    expect(settings({ adTag: { value: 'AB'.repeat(16) } }).effectiveMode).to.equal('middle');
    expect(settings({ adTag: { value: 'AB'.repeat(16) } }).adTag).to.deep.equal({
      kind: 'value',
      value: 'ab'.repeat(16),
    });
  });

  it('accepts dd secrets by default, and only fake TLS once a domain is set', () => {
    expect(settings().modes).to.deep.equal(['secure']);
    expect(settings({ fakeTLS: { domain: 'example.com' } }).modes).to.deep.equal(['tls']);
    expect(settings({ modes: ['classic', 'secure'] }).modes).to.deep.equal(['classic', 'secure']);
  });

  it('takes the external IP from the first source that applies', () => {
    expect(settings().publicAddress.externalIPSource).to.equal('LoadBalancer');
    expect(
      settings({ publicAddress: { externalIP: '203.0.113.7' } }).publicAddress.externalIPSource,
    ).to.equal('Explicit');
    expect(settings({ service: { hostNetwork: true } }).publicAddress.externalIPSource).to.equal(
      'NodeHostIP',
    );
    expect(settings({ service: { type: 'ClusterIP' } }).publicAddress.externalIPSource).to.equal('Detect');
  });

  it('rejects what the schema cannot check, naming the fields', () => {
    const bad = () =>
      settings({
        publicAddress: { externalIP: '1.2.3' },
        restart: { enabled: true, timeZone: 'Nowhere/Land' },
      });
    expect(bad).to.throw(SpecError);
    try {
      bad();
    } catch (err) {
      expect((err as SpecError).problems).to.have.length(2);
      expect((err as SpecError).message)
        .to.match(/spec\.publicAddress\.externalIP/)
        .and.match(/spec\.restart/);
    }
  });
});

describe('rendered Deployment', () => {
  it('runs hardened: non-root, read-only root, no capabilities, RuntimeDefault seccomp', () => {
    const d = deploy();
    const pod = d.spec.template.spec as Record<string, unknown>;
    expect(pod.securityContext).to.deep.include({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.automountServiceAccountToken).to.equal(false);
    const c = container();
    expect(c.securityContext).to.deep.include({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('serves 443 without root: the Service port maps to an unprivileged container port', () => {
    const c = container();
    expect(c.ports.find((p) => p.name === 'client')?.containerPort).to.equal(8443);
    expect(env().PORT?.value).to.equal('8443');
    const svc = renderClientService(mtp(), 'tg', settings());
    expect(svc.spec.ports).to.deep.equal([
      { name: 'client', port: 443, targetPort: 'client', protocol: 'TCP' },
    ]);
  });

  it('with hostNetwork listens on the node port itself, one pod per node', () => {
    const spec: MTProxySpec = { service: { hostNetwork: true } };
    const d = deploy(spec);
    const c = container(spec);
    expect(c.ports.find((p) => p.name === 'client')).to.include({ containerPort: 443, hostPort: 443 });
    expect(c.securityContext.capabilities).to.deep.equal({ drop: ['ALL'], add: ['NET_BIND_SERVICE'] });
    // A non-root user would lose the capability at exec (no ambient capabilities in Kubernetes):
    // uid 0 holding only NET_BIND_SERVICE, never escalating (proven in a pod: test/e2e).
    expect(c.securityContext).to.include({
      runAsUser: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
    });
    expect(container({ service: { hostNetwork: true }, port: 8443 }).securityContext).to.include({
      runAsNonRoot: true,
    });
    expect(container({ service: { hostNetwork: true }, port: 8443 }).securityContext.runAsUser).to.equal(
      undefined,
    );
    expect(JSON.stringify(d.spec.template.spec)).to.include('kubernetes.io/hostname');
    expect(d.spec.strategy.rollingUpdate).to.deep.equal({ maxSurge: 0, maxUnavailable: 1 });
    expect(env(spec).EXTERNAL_IP?.valueFrom).to.deep.equal({ fieldRef: { fieldPath: 'status.hostIP' } });
  });

  it('rolls without losing capacity and gives connections time to drain', () => {
    const d = deploy({ timeouts: { drainSeconds: 40 } });
    expect(d.spec.strategy.rollingUpdate).to.deep.equal({ maxSurge: 1, maxUnavailable: 0 });
    expect(d.spec.template.spec.terminationGracePeriodSeconds).to.equal(55);
    expect(env({ timeouts: { drainSeconds: 40 } }).DRAIN_TIMEOUT?.value).to.equal('40');
  });

  it('probes /healthz and /readyz on the metrics port', () => {
    const c = container();
    expect(c.livenessProbe.httpGet).to.include({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe.httpGet).to.include({ path: '/readyz', port: 'metrics' });
    expect(c.ports.find((p) => p.name === 'metrics')?.containerPort).to.equal(9102);
  });

  it('gives secrets and the ad tag only as Secret references, and turns the banner off', () => {
    const e = env({ adTag: { secretKeyRef: { name: 'tag-secret' } } });
    expect(e.SECRET).to.deep.equal({
      name: 'SECRET',
      valueFrom: { secretKeyRef: { name: 'tg-secrets', key: 'secrets' } },
    });
    expect(e.TAG).to.deep.equal({
      name: 'TAG',
      valueFrom: { secretKeyRef: { name: 'tag-secret', key: 'tag' } },
    });
    expect(e.BANNER?.value).to.equal('off');
    expect(e.INTERNAL_IP?.valueFrom).to.deep.equal({ fieldRef: { fieldPath: 'status.podIP' } });
  });

  it('writes every proxy setting the spec gives', () => {
    const e = env({
      fakeTLS: {
        domain: 'example.com',
        unknownSNI: 'drop',
        mask: { enabled: true, host: 'mask.example', port: 8443 },
      },
      modes: ['tls', 'secure'],
      upstream: { mode: 'middle', dcAddresses: [{ dc: 2, address: '127.0.0.1:7002' }], preferIPv6: false },
      telegramConfig: { refreshInterval: '12h', proxyConfigURL: 'https://example.com/config' },
      proxyProtocol: 'v2',
      stats: { allowCIDRs: ['10.0.0.0/8'] },
      publicAddress: { host: 'proxy.example.com', port: 8443, externalIP: '203.0.113.7' },
      workers: 4,
      maxConnections: 1000,
    });
    const values = Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v.value]));
    expect(values).to.include({
      MODE: 'middle',
      MODES: 'tls,secure',
      FAKE_TLS_DOMAIN: 'example.com',
      UNKNOWN_SNI: 'drop',
      MASK: 'on',
      MASK_HOST: 'mask.example',
      MASK_PORT: '8443',
      DC_ADDRS: '2=127.0.0.1:7002',
      PREFER_IPV6: 'off',
      CONFIG_REFRESH_INTERVAL: '43200',
      PROXY_CONFIG_URL: 'https://example.com/config',
      PROXY_PROTOCOL: 'v2',
      STATS_PORT: '2398',
      STATS_ALLOW: '10.0.0.0/8',
      PUBLIC_HOST: 'proxy.example.com',
      PUBLIC_PORT: '8443',
      EXTERNAL_IP: '203.0.113.7',
      IP_DETECT_URLS: '',
      WORKERS: '4',
      MAX_CONNECTIONS: '1000',
      METRICS_PORT: '9102',
      DATA_DIR: '/data',
    });
  });

  it('lets the proxy detect its address only when no source gives it', () => {
    expect(env({ service: { type: 'ClusterIP' } })).to.not.have.property('IP_DETECT_URLS');
    expect(env({ service: { type: 'ClusterIP' } })).to.not.have.property('EXTERNAL_IP');
  });

  it('carries the checksum and the last daily restart on the pod template', () => {
    const d = deploy({}, '2026-01-15T03:00:00Z');
    expect(d.spec.template.metadata.annotations).to.include({
      [ANNOTATIONS.secretsChecksum]: 'abc',
      [ANNOTATIONS.restartedAt]: '2026-01-15T03:00:00Z',
    });
    expect(deploy().spec.template.metadata.annotations).to.not.have.property(ANNOTATIONS.restartedAt);
  });

  it('passes the pod template knobs through, keeping its own selector labels', () => {
    const spec: MTProxySpec = {
      podTemplate: {
        labels: { team: 'net', 'app.kubernetes.io/name': 'other' },
        annotations: { note: 'x' },
        resources: { limits: { memory: '256Mi' } },
        nodeSelector: { zone: 'a' },
        tolerations: [{ key: 'dedicated', operator: 'Exists' }],
        priorityClassName: 'high',
        topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'ScheduleAnyway' }],
      },
      paused: true,
      replicas: 3,
    };
    const d = deploy(spec);
    const pod = d.spec.template.spec as Record<string, unknown>;
    expect(d.spec.template.metadata.labels).to.include({ team: 'net', 'app.kubernetes.io/name': 'mtproxy' });
    expect(d.spec.template.metadata.annotations).to.include({ note: 'x' });
    expect(pod).to.deep.include({
      nodeSelector: { zone: 'a' },
      priorityClassName: 'high',
      tolerations: [{ key: 'dedicated', operator: 'Exists' }],
    });
    // The spec's limit overrides the derived one; the derived requests stay (they fit below it).
    expect(container(spec).resources).to.deep.equal({
      requests: { cpu: '200m', memory: '160Mi' },
      limits: { memory: '256Mi' },
    });
    expect(d.spec).to.include({ paused: true, replicas: 3 });
    expect(d.metadata.ownerReferences).to.deep.equal([
      {
        apiVersion: 'mtkube.dev/v1alpha1',
        kind: 'MTProxy',
        name: 'tg',
        uid: 'uid-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });
});

describe('rendered Services, PDB and ServiceMonitor', () => {
  it('keeps client IPs with externalTrafficPolicy Local on load balancers only', () => {
    const lb = renderClientService(
      mtp({ service: { loadBalancerClass: 'x/lb' } }),
      'tg',
      settings({ service: { loadBalancerClass: 'x/lb' } }),
    );
    expect(lb.spec).to.include({
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      loadBalancerClass: 'x/lb',
    });
    const cluster = renderClientService(mtp(), 'tg', settings({ service: { type: 'ClusterIP' } }));
    expect(cluster.spec).to.not.have.property('externalTrafficPolicy');
  });

  it('copies service annotations (for load balancer controllers)', () => {
    const spec: MTProxySpec = { service: { annotations: { 'lb.example/type': 'nlb' } } };
    expect(renderClientService(mtp(spec), 'tg', settings(spec)).metadata.annotations).to.deep.equal({
      'lb.example/type': 'nlb',
    });
  });

  it('exposes metrics on their own Service and adds a PDB and ServiceMonitor only when asked', () => {
    expect(renderMetricsService(mtp(), 'tg-metrics', settings()).spec.ports).to.deep.equal([
      { name: 'metrics', port: 9102, targetPort: 'metrics', protocol: 'TCP' },
    ]);
    expect(renderPodDisruptionBudget(mtp(), 'tg', settings())).to.equal(undefined);
    const pdbSpec: MTProxySpec = { podDisruptionBudget: { enabled: true } };
    expect(renderPodDisruptionBudget(mtp(pdbSpec), 'tg', settings(pdbSpec))?.spec).to.deep.include({
      maxUnavailable: 1,
    });
    expect(renderServiceMonitor(mtp(), 'tg', settings())).to.equal(undefined);
    const smSpec: MTProxySpec = { metrics: { serviceMonitor: { enabled: true, interval: '30s' } } };
    expect(renderServiceMonitor(mtp(smSpec), 'tg', settings(smSpec))?.spec.endpoints).to.deep.equal([
      { port: 'metrics', path: '/metrics', interval: '30s' },
    ]);
  });
});

describe('operator: the proxy has the last word on a spec', () => {
  it('a spec the proxy would refuse is named as such before anything is rolled out', () => {
    const s = resolveSpec({ stats: { allowCIDRs: ['10.0.0.0/8', 'bogus'] } }, { defaultImage: 'img' });
    expect(proxyConfigProblem(s)).to.match(/^the proxy would not start: STATS_ALLOW: "bogus"/);
  });

  it('the defaults and the examples render to an env the proxy starts with', () => {
    for (const spec of [
      {},
      { fakeTLS: { domain: 'www.example.com' } },
      { adTag: { value: 'a'.repeat(32) } },
    ]) {
      expect(proxyConfigProblem(resolveSpec(spec, { defaultImage: 'img' }))).to.equal(undefined);
    }
  });
});
