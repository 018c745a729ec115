// One contract between the CRD and the proxy: whatever spec the API server accepts (schema, CEL
// rules and defaults of crds/), the operator renders into an environment the proxy's own
// configuration parser accepts, with ports that do not collide. Specs are generated near the edges
// (odd IP forms, ports out of range, Unicode spaces, long durations), sent to the real API server
// as dry-run creates, and only the accepted ones are rendered.

import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import fc from 'fast-check';
import { type ProxySettings, resolveSpec, SpecError } from '../../operator/src/api/defaults.js';
import type { MTProxy, MTProxySpec } from '../../operator/src/api/types.js';
import { isConflict, KubeApiError, KubeClient } from '../../operator/src/controller/kube-client.js';
import { type EnvVar, renderEnv } from '../../operator/src/render/env.js';
import { parseConfig, readRawSettings } from '../../proxy/src/config/config.js';
import { SETTINGS } from '../../proxy/src/config/settings.js';
import type { ControlPlane } from '../cluster/control-plane.js';
import { createNamespace, deleteNamespace } from '../cluster/shared-cluster.js';
import { clusterWithCrd, TEST_IMAGE } from './support/harness.js';

const HEX = '0123456789abcdef0123456789abcdef';
const POD_IP = '10.1.2.3';

/** Mostly values a user would write, sometimes one from the edges. */
const mostly = <T>(good: fc.Arbitrary<T>, edge: fc.Arbitrary<T>): fc.Arbitrary<T> =>
  fc.oneof({ arbitrary: good, weight: 6 }, { arbitrary: edge, weight: 1 });

const noise = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('\u00a0', 'a,b', 'x=y', '[::1]', '1.2.3.4/33', '::/129', '01.2.3.4', '10.0.0.0/08'),
);
const port = mostly(
  fc.integer({ min: 1024, max: 65535 }),
  fc.constantFrom(0, 1, 443, 2398, 9102, 8443, 65536, 99999),
);
const ip = mostly(
  fc.oneof(fc.ipV4(), fc.ipV6()),
  fc.oneof(
    fc.ipV4Extended(),
    fc.ipV4().map((a) => `::ffff:${a}`),
    fc.ipV6().map((a) => `${a}%eth0`),
    fc.ipV4().map((a) => ` ${a}`),
  ),
);
const cidr = mostly(
  fc.oneof(
    ip,
    fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([a, b]) => `${a}/${b}`),
    fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([a, b]) => `${a}/${b}`),
  ),
  fc.oneof(
    fc.tuple(fc.oneof(fc.ipV4(), fc.ipV6()), fc.integer({ min: 0, max: 140 })).map(([a, b]) => `${a}/${b}`),
    noise,
  ),
);
const host = mostly(
  fc.oneof(fc.domain(), fc.ipV4()),
  fc.oneof(noise, fc.constantFrom('dc\u00a0one', 'a,b', 'a=b')),
);
const dcAddress = mostly(
  fc.oneof(
    fc.tuple(host, port).map(([h, p]) => `${h}:${p}`),
    fc.tuple(fc.ipV6(), port).map(([h, p]) => `[${h}]:${p}`),
  ),
  noise,
);
const duration = mostly(
  fc.tuple(fc.integer({ min: 1, max: 400 }), fc.constantFrom('h', 'm', 's')).map(([n, u]) => `${n}${u}`),
  fc.oneof(fc.constantFrom('1h30m', '168h', '168h1s', '99999999h', '0s'), noise),
);
const optional = { requiredKeys: [] as never[] };

const spec: fc.Arbitrary<MTProxySpec> = fc.record(
  {
    workers: mostly(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 0, max: 300 })),
    maxConnections: mostly(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 0, max: 2_000_000 })),
    port,
    containerPort: port,
    modes: fc.subarray(['classic', 'secure', 'tls'] as const, { minLength: 1 }),
    logLevel: fc.constantFrom('error', 'warn', 'info', 'debug'),
    upstream: fc.record(
      {
        mode: fc.constantFrom('auto', 'direct', 'middle'),
        preferIPv6: fc.boolean(),
        dcAddresses: fc.array(
          fc.record({
            dc: mostly(fc.integer({ min: 1, max: 5 }), fc.integer({ min: -40_000, max: 40_000 })),
            address: dcAddress,
          }),
          { maxLength: 3 },
        ),
      },
      optional,
    ),
    telegramConfig: fc.record(
      {
        proxySecretURL: mostly(fc.webUrl(), noise),
        proxyConfigURL: mostly(fc.webUrl(), noise),
        refreshInterval: duration,
      },
      optional,
    ),
    fakeTLS: fc.record(
      {
        domain: mostly(fc.domain(), noise),
        unknownSNI: fc.constantFrom('mask', 'drop', 'accept'),
        mask: fc.record({ enabled: fc.boolean(), host: fc.oneof(host, ip), port }, optional),
      },
      optional,
    ),
    proxyProtocol: fc.constantFrom('off', 'v1', 'v2', 'auto'),
    publicAddress: fc.record({ host: mostly(fc.domain(), noise), port, externalIP: ip }, optional),
    service: fc.record({ hostNetwork: fc.boolean() }, optional),
    stats: fc.record({ allowCIDRs: fc.array(cidr, { maxLength: 3 }) }),
    metrics: fc.record({ enabled: fc.boolean(), port }, optional),
    timeouts: fc.record(
      {
        handshakeSeconds: mostly(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 0, max: 700 })),
        idleSeconds: mostly(fc.integer({ min: 1, max: 3600 }), fc.integer({ min: 0, max: 90_000 })),
        drainSeconds: mostly(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 4_000 })),
      },
      optional,
    ),
  },
  optional,
) as fc.Arbitrary<MTProxySpec>;

/** What the kubelet hands the container: values, a Secret key's value, the pod IP. */
function containerEnv(vars: readonly EnvVar[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of vars) {
    if (v.value !== undefined) env[v.name] = v.value;
    else if (v.valueFrom && 'secretKeyRef' in v.valueFrom) env[v.name] = HEX;
    else env[v.name] = POD_IP;
  }
  return env;
}

describe('operator: anything the API server accepts, the proxy starts with', function () {
  this.timeout(300_000);
  let cluster: ControlPlane;
  let ns: string;
  let client: KubeClient;
  before(async function () {
    this.timeout(240_000);
    cluster = await clusterWithCrd(this);
    ns = await createNamespace(cluster, 'contract');
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfigPath);
    client = new KubeClient(kc, 'contract-test');
  });
  after(async () => {
    client?.close();
    if (ns) await deleteNamespace(cluster, ns);
  });

  /** The object as the API server would store it (defaults applied), or undefined if refused. */
  async function admitted(s: MTProxySpec): Promise<MTProxy | undefined> {
    try {
      return await client.request<MTProxy>('POST', `/apis/mtkube.dev/v1alpha1/namespaces/${ns}/mtproxies`, {
        query: { dryRun: 'All' },
        body: { apiVersion: 'mtkube.dev/v1alpha1', kind: 'MTProxy', metadata: { name: 'probe' }, spec: s },
      });
    } catch (err) {
      if (err instanceof KubeApiError && (err.statusCode === 422 || err.statusCode === 400)) return undefined;
      if (isConflict(err)) return undefined;
      throw err;
    }
  }

  it('specs generated near the edges: every accepted one renders to an env the proxy parses', async () => {
    let accepted = 0;
    let tried = 0;
    let refusedByOperator = 0;
    await fc.assert(
      fc.asyncProperty(spec, async (s) => {
        tried++;
        const stored = await admitted(s);
        if (!stored) return;
        accepted++;
        let settings: ProxySettings;
        try {
          settings = resolveSpec(stored.spec, { defaultImage: TEST_IMAGE });
        } catch (err) {
          // Refused visibly by the operator (InvalidSpec on the MTProxy), never a crash-looping pod.
          if (err instanceof SpecError) {
            refusedByOperator++;
            return;
          }
          throw err;
        }
        const vars = renderEnv(settings, {
          secretsRef: { name: 'probe-secrets', key: 'secrets' },
          usersSecretName: undefined,
          loadBalancerIP: '203.0.113.9',
        });
        const known = new Set(SETTINGS.map((x) => x.env));
        for (const v of vars) expect(known.has(v.name), `${v.name} is a proxy setting`).to.equal(true);
        const env = containerEnv(vars);
        const config = parseConfig(readRawSettings(env, []), env);
        const ports = [config.port, config.statsPort, config.metricsPort].filter((p) => p !== 0);
        expect(new Set(ports).size, `ports ${ports.join(', ')} collide`).to.equal(ports.length);
      }),
      { numRuns: 300, seed: Number(process.env.MTKUBE_CONTRACT_SEED ?? Date.now() % 2 ** 31) },
    );
    // The generator must reach the interesting part: enough specs got through the API server.
    expect(accepted, `${accepted} of ${tried} specs accepted`).to.be.greaterThan(30);
    expect(refusedByOperator, 'most accepted specs are run, not refused').to.be.below(accepted / 2);
  });
});
