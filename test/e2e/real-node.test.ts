// End to end on a real node: the images built by `npm run images` run as real containers under a
// real kubelet (containerd, runc, CNI bridge) joined to the test control plane. Each test is what a
// user does: `helm install` the chart, `kubectl apply` an example, read the links Secret, connect a
// real client (gramjs) through `kubectl port-forward`, or straight to a hostNetwork pod on the
// node's own 127.0.0.1. The stand-in DC runs on the host; pods reach it through a relay into the
// node's network namespace (test/cluster/node/relay.ts), so nothing leaves the machine.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { type ControlPlane, startControlPlane } from '../cluster/control-plane.js';
import { eventually } from '../cluster/eventually.js';
import { realNodeName } from '../cluster/node/real-node.js';
import type { Endpoint } from '../cluster/node/relay.js';
import { freePort } from '../support/free-port.js';
import { realNodeProblem, reportNotRun } from '../support/not-run.js';
import { Obfs2Client } from '../support/obfs2-client.js';
import { type StandinDc, startStandinDc } from '../support/standin-dc.js';
import { gramjsHandshakeViaProxy } from '../support/telegram-client.js';

const repoRoot = join(import.meta.dirname, '..', '..');
const RELEASE = 'mtkube';
const OPERATOR_NS = 'mtkube-system';

interface PodJson {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { nodeName?: string; hostNetwork?: boolean };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; ready: boolean; restartCount: number; started?: boolean }[];
  };
}

interface LinksJson {
  links: { secret: string; form: 'ee' | 'dd' | 'plain'; tg: string }[];
}

const isReady = (p: PodJson): boolean =>
  (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

describe('real node: the images run as real pods (helm, kubectl, a real client)', function () {
  this.timeout(300_000);
  let cluster: ControlPlane;
  let dc: StandinDc;
  let dcForPods: Endpoint;
  const forwards: ChildProcess[] = [];

  before(async function () {
    this.timeout(1_200_000);
    const problem = realNodeProblem();
    if (problem) {
      reportNotRun('real-node end-to-end tests', problem);
      if (process.env.CI) throw new Error(`real-node end-to-end tests cannot run: ${problem}`);
      this.skip();
    }
    const verbose = Boolean(process.env.MTKUBE_CLUSTER_VERBOSE);
    cluster = await startControlPlane({
      realNode: true,
      startTimeoutMs: 600_000,
      ...(verbose ? { log: (m: string) => console.error(`[cluster] ${m}`) } : {}),
    });
    dc = await startStandinDc();
    dcForPods = await cluster.realNode!.exposeHostPort(dc.port);
  });

  after(async function () {
    this.timeout(120_000);
    for (const f of forwards) f.kill('SIGTERM');
    await dc?.stop();
    await cluster?.stop();
  });

  /** `kubectl patch --type merge` of the example's MTProxy (default/tg-proxy). */
  const patchExample = (patch: unknown): Promise<string> =>
    cluster.kubectlOk([
      'patch',
      'mtproxy',
      'tg-proxy',
      '-n',
      'default',
      '--type',
      'merge',
      '-p',
      JSON.stringify(patch),
    ]);

  const pods = async (ns: string, selector: string): Promise<PodJson[]> =>
    (
      JSON.parse(await cluster.kubectlOk(['get', 'pods', '-n', ns, '-l', selector, '-o', 'json'])) as {
        items: PodJson[];
      }
    ).items;

  const readyPods = (ns: string, selector: string, count: number, timeoutMs = 180_000): Promise<PodJson[]> =>
    eventually(
      async () => {
        const list = (await pods(ns, selector)).filter((p) => isReady(p));
        if (list.length !== count) {
          const all = await cluster.kubectl(['get', 'pods', '-n', ns, '-o', 'wide']);
          const logs = await cluster.kubectl(['logs', '-n', ns, '-l', selector, '--tail=15', '--previous']);
          throw new Error(
            `want ${count} Ready pods for ${selector} in ${ns}, have ${list.length}:\n${all.stdout}\n${logs.stdout}${logs.stderr}`,
          );
        }
        return list;
      },
      { timeoutMs, intervalMs: 1_000 },
    );

  /** `kubectl port-forward pod/NAME :PORT`: resolves with the local port kubectl chose. */
  const portForward = (ns: string, pod: string, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const child = spawn(
        join(cluster.binDir, 'kubectl'),
        ['port-forward', '-n', ns, `pod/${pod}`, `:${port}`, '--address', '127.0.0.1'],
        { env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      forwards.push(child);
      let said = '';
      const timer = setTimeout(() => reject(new Error(`kubectl port-forward said: ${said}`)), 30_000);
      const onData = (chunk: Buffer): void => {
        said += chunk.toString();
        const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(said);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`kubectl port-forward exited ${code}: ${said}`));
      });
    });

  /** What the container itself sees: its uid, seccomp mode, and whether / is writable. */
  const insideContainer = async (ns: string, pod: string) => {
    const script =
      "const fs=require('fs');const s=fs.readFileSync('/proc/self/status','utf8');" +
      "let rw=true;try{fs.writeFileSync('/probe','x')}catch{rw=false}" +
      'console.log(JSON.stringify({uid:process.getuid(),seccomp:/Seccomp:\\s*(\\d)/.exec(s)[1],' +
      'capEff:/CapEff:\\s*(\\w+)/.exec(s)[1],noNewPrivs:/NoNewPrivs:\\s*(\\d)/.exec(s)[1],rootWritable:rw}))';
    const out = await cluster.kubectlOk(['exec', '-n', ns, pod, '-c', 'proxy', '--', 'node', '-e', script], {
      timeoutMs: 60_000,
    });
    return JSON.parse(out.trim()) as {
      uid: number;
      seccomp: string;
      capEff: string;
      noNewPrivs: string;
      rootWritable: boolean;
    };
  };

  const links = async (ns: string, name: string): Promise<LinksJson> => {
    const b64 = await cluster.kubectlOk([
      'get',
      'secret',
      `${name}-links`,
      '-n',
      ns,
      '-o',
      'jsonpath={.data.links\\.json}',
    ]);
    return JSON.parse(Buffer.from(b64, 'base64').toString('utf8')) as LinksJson;
  };

  it('helm install: the operator pod is Ready by its own probes and holds the Lease', async () => {
    const res = await cluster.helm(
      [
        'install',
        RELEASE,
        join(repoRoot, 'charts', 'mtkube'),
        '-n',
        OPERATOR_NS,
        '--create-namespace',
        // The hostNetwork test below needs what a user of hostNetwork sets: the operator refuses it by default.
        '--set',
        'policy.allowHostNetwork=true',
        '--wait',
        '--timeout',
        '4m',
      ],
      { timeoutMs: 260_000 },
    );
    expect(res.code, `${res.stdout}\n${res.stderr}`).to.equal(0);
    const [op] = await readyPods(OPERATOR_NS, 'app.kubernetes.io/component=operator', 1);
    expect(op!.spec.nodeName).to.equal(realNodeName);
    expect(op!.status.containerStatuses?.every((c) => c.restartCount === 0)).to.equal(true);
    const holder = await eventually(
      async () => {
        const leases = JSON.parse(
          await cluster.kubectlOk(['get', 'leases', '-n', OPERATOR_NS, '-o', 'json']),
        ) as {
          items: { spec: { holderIdentity?: string } }[];
        };
        const h = leases.items
          .map((l) => l.spec.holderIdentity ?? '')
          .find((x) => x.includes(op!.metadata.name));
        if (!h) throw new Error(`no Lease held by ${op!.metadata.name}: ${JSON.stringify(leases.items)}`);
        return h;
      },
      { timeoutMs: 60_000 },
    );
    expect(holder).to.include(op!.metadata.name);
  });

  it('kubectl apply -f crds/examples/basic.yaml: proxy pods Ready by /healthz and /readyz, hardened', async () => {
    await cluster.kubectlOk([
      'apply',
      '-n',
      'default',
      '-f',
      join(repoRoot, 'crds', 'examples', 'basic.yaml'),
    ]);
    const ready = await readyPods(
      'default',
      'app.kubernetes.io/instance=tg-proxy,app.kubernetes.io/component=proxy',
      2,
    );
    for (const p of ready) {
      expect(p.spec.nodeName).to.equal(realNodeName);
      const seen = await insideContainer('default', p.metadata.name);
      expect(seen.uid, 'non-root').to.not.equal(0);
      expect(seen.seccomp, 'seccomp filter mode').to.equal('2');
      expect(seen.rootWritable, 'read-only root filesystem').to.equal(false);
      expect(seen.capEff, 'no capabilities').to.equal('0000000000000000');
      expect(seen.noNewPrivs).to.equal('1');
    }
  });

  it('a gramjs client gets through a running pod with a link from the links Secret (kubectl port-forward)', async () => {
    // Point the example at the stand-in DC: a spec change, so the operator rolls the pods. gramjs
    // speaks abridged even with a dd secret (test/support/telegram-client.ts), which is the
    // classic mode: allow it beside the example's secure mode.
    await patchExample({
      spec: {
        modes: ['secure', 'classic'],
        upstream: { dcAddresses: [{ dc: 2, address: `${dcForPods.host}:${dcForPods.port}` }] },
      },
    });
    const selector = 'app.kubernetes.io/instance=tg-proxy,app.kubernetes.io/component=proxy';
    const pod = await eventually(
      async () => {
        const rs = JSON.parse(
          await cluster.kubectlOk(['get', 'deployment', 'tg-proxy', '-n', 'default', '-o', 'json']),
        ) as {
          metadata: { generation: number };
          status: {
            observedGeneration?: number;
            updatedReplicas?: number;
            readyReplicas?: number;
            replicas?: number;
          };
        };
        const envOk = (
          await cluster.kubectlOk([
            'get',
            'deployment',
            'tg-proxy',
            '-n',
            'default',
            '-o',
            'jsonpath={.spec.template.spec.containers[0].env}',
          ])
        ).includes(String(dcForPods.port));
        const s = rs.status;
        if (
          !envOk ||
          s.observedGeneration !== rs.metadata.generation ||
          s.updatedReplicas !== 2 ||
          s.readyReplicas !== 2 ||
          s.replicas !== 2
        ) {
          throw new Error(`roll not finished: ${JSON.stringify(s)}`);
        }
        const list = (await pods('default', selector)).filter(isReady);
        if (list.length !== 2) throw new Error('old pods still around');
        return list[0]!;
      },
      { timeoutMs: 240_000, intervalMs: 1_000 },
    );
    const local = await portForward('default', pod.metadata.name, 8443);
    const { links: all } = await links('default', 'tg-proxy');
    const dd = new URL(all.find((l) => l.form === 'dd')!.tg);
    const req = await gramjsHandshakeViaProxy({
      dc,
      proxyPort: local,
      secret: dd.searchParams.get('secret')!,
      dcId: 2,
    }).catch(async (err: Error) => {
      const logs = await cluster.kubectl(['logs', '-n', 'default', pod.metadata.name, '--tail=30']);
      throw new Error(`${err.message}\npod ${pod.metadata.name} logs:\n${logs.stdout}${logs.stderr}`);
    });
    expect(req.nonce).to.be.instanceOf(Buffer);
  });

  it('hostNetwork on port 443: the pod binds 443 on the node and a client reaches it on the node address', async () => {
    const manifest = {
      apiVersion: 'mtkube.dev/v1alpha1',
      kind: 'MTProxy',
      metadata: { name: 'edge', namespace: 'default' },
      spec: {
        replicas: 1,
        workers: 1,
        service: { hostNetwork: true },
        modes: ['secure', 'classic'],
        publicAddress: { host: 'proxy.example.com', externalIP: '203.0.113.7' },
        upstream: { dcAddresses: [{ dc: 2, address: `${dcForPods.host}:${dcForPods.port}` }] },
        metrics: { port: 19102 },
      },
    };
    await cluster.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
    const [pod] = await readyPods(
      'default',
      'app.kubernetes.io/instance=edge,app.kubernetes.io/component=proxy',
      1,
    );
    expect(pod!.spec.hostNetwork).to.equal(true);
    expect(pod!.status.containerStatuses?.[0]?.restartCount, 'no crash loop').to.equal(0);
    const seen = await insideContainer('default', pod!.metadata.name);
    // Only CAP_NET_BIND_SERVICE (bit 10), no escalation, seccomp, read-only root.
    expect(seen.capEff).to.equal('0000000000000400');
    expect(seen.noNewPrivs).to.equal('1');
    expect(seen.seccomp).to.equal('2');
    expect(seen.rootWritable).to.equal(false);
    // The node's own loopback, port 443, carried to the host's 127.0.0.1 by a relay.
    const hostPort = await freePort();
    await cluster.realNode!.forwardNodePort(443, hostPort);
    const { links: all } = await links('default', 'edge');
    const dd = new URL(all.find((l) => l.form === 'dd')!.tg);
    expect(dd.searchParams.get('port')).to.equal('443');
    const req = await gramjsHandshakeViaProxy({
      dc,
      proxyPort: hostPort,
      secret: dd.searchParams.get('secret')!,
      dcId: 2,
    });
    expect(req.nonce).to.be.instanceOf(Buffer);
  });

  it('the same hostNetwork pod as rendered before the fix (non-root + capabilities.add) fails with EACCES', async () => {
    // The regression the fix is for, shown on the real node: a non-root process gets no ambient
    // capabilities, so NET_BIND_SERVICE in capabilities.add does not let it bind 443.
    const image = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'bind-443-nonroot', namespace: 'default' },
      spec: {
        hostNetwork: true,
        restartPolicy: 'Never',
        containers: [
          {
            name: 'proxy',
            image: `ghcr.io/mtkube/mtproxy:${image.version}`,
            imagePullPolicy: 'Never',
            command: [
              'node',
              '-e',
              "require('net').createServer().listen(443,()=>process.exit(0)).on('error',e=>{console.log(e.code);process.exit(3)})",
            ],
            securityContext: {
              runAsUser: 10001,
              runAsNonRoot: true,
              allowPrivilegeEscalation: false,
              capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
            },
          },
        ],
      },
    };
    await cluster.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(pod) });
    const phase = await eventually(
      async () => {
        const p = JSON.parse(
          await cluster.kubectlOk(['get', 'pod', 'bind-443-nonroot', '-n', 'default', '-o', 'json']),
        ) as PodJson;
        if (p.status.phase !== 'Failed' && p.status.phase !== 'Succeeded')
          throw new Error(`phase ${p.status.phase}`);
        return p.status.phase;
      },
      { timeoutMs: 90_000, intervalMs: 1_000 },
    );
    expect(phase).to.equal('Failed');
    expect((await cluster.kubectlOk(['logs', '-n', 'default', 'bind-443-nonroot'])).trim()).to.equal(
      'EACCES',
    );
  });

  it('a spec change rolls the pods: a client connected before keeps relaying through the drain, new clients reach new pods', async () => {
    const selector = 'app.kubernetes.io/instance=tg-proxy,app.kubernetes.io/component=proxy';
    const [old] = await readyPods('default', selector, 2);
    const { links: all } = await links('default', 'tg-proxy');
    const secret = new URL(all.find((l) => l.form === 'dd')!.tg).searchParams.get('secret')!;
    const oldPort = await portForward('default', old!.metadata.name, 8443);
    const client = await Obfs2Client.connect({ port: oldPort, secret, dc: 2, timeoutMs: 10_000 });
    try {
      const echo = async (fill: number): Promise<void> => {
        const payload = Buffer.alloc(256, fill);
        client.send(payload);
        expect((await client.receive()).payload.equals(payload)).to.equal(true);
      };
      await echo(1);
      // Any change of the pod template rolls the Deployment; the daily roll changes an annotation.
      await patchExample({ spec: { timeouts: { drainSeconds: 30 } } });
      // The old pod is being deleted (preStop, then the proxy drains) ...
      await eventually(
        async () => {
          const p = JSON.parse(
            await cluster.kubectlOk(['get', 'pod', old!.metadata.name, '-n', 'default', '-o', 'json']),
          ) as {
            metadata: { deletionTimestamp?: string };
          };
          if (!p.metadata.deletionTimestamp) throw new Error('old pod not terminating yet');
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      // ... and its client still relays, several seconds into the drain.
      await echo(2);
      await new Promise((r) => setTimeout(r, 8_000));
      await echo(3);
      // New clients reach the new pods.
      const fresh = await eventually(
        async () => {
          const list = (await pods('default', selector)).filter(
            (p) => isReady(p) && p.metadata.name !== old!.metadata.name,
          );
          const env = await cluster.kubectlOk([
            'get',
            'pod',
            list[0]?.metadata.name ?? 'none',
            '-n',
            'default',
            '-o',
            'jsonpath={.spec.containers[0].env}',
          ]);
          if (!env.includes('"DRAIN_TIMEOUT","value":"30"')) throw new Error('no new pod Ready yet');
          return list[0]!;
        },
        { timeoutMs: 180_000, intervalMs: 1_000 },
      );
      const newPort = await portForward('default', fresh.metadata.name, 8443);
      const req = await gramjsHandshakeViaProxy({ dc, proxyPort: newPort, secret, dcId: 2 });
      expect(req.nonce).to.be.instanceOf(Buffer);
      await echo(4);
    } finally {
      await client.close();
    }
  });

  it('helm uninstall removes the operator and leaves the CRD, the MTProxies and their running pods, as the README says', async () => {
    const res = await cluster.helm(['uninstall', RELEASE, '-n', OPERATOR_NS, '--wait', '--timeout', '2m'], {
      timeoutMs: 150_000,
    });
    expect(res.code, res.stderr).to.equal(0);
    await eventually(
      async () => {
        const left = await pods(OPERATOR_NS, 'app.kubernetes.io/component=operator');
        if (left.length > 0) throw new Error(`operator pods left: ${left.map((p) => p.metadata.name)}`);
      },
      { timeoutMs: 90_000, intervalMs: 1_000 },
    );
    expect((await cluster.kubectl(['get', 'crd', 'mtproxies.mtkube.dev'])).code, 'the CRD stays').to.equal(0);
    expect((await cluster.kubectl(['get', 'mtproxy', 'tg-proxy', '-n', 'default'])).code).to.equal(0);
    expect((await cluster.kubectl(['get', 'secret', 'tg-proxy-links', '-n', 'default'])).code).to.equal(0);
    // The proxies keep serving without the operator.
    await readyPods('default', 'app.kubernetes.io/instance=tg-proxy,app.kubernetes.io/component=proxy', 2);
  });
});
