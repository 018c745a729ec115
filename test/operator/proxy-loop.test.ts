// The loop that matters: what the operator renders really runs. Take the Deployment and Secrets the
// operator produced, start our proxy on this machine with exactly that container's environment,
// arguments and mounts (the pod's /data becomes a temporary directory; the pod IP is 127.0.0.1),
// and get a real Telegram client through it with a link from the links Secret.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Obfs2Client } from '../support/obfs2-client.js';
import { freePort, type ProxyProcess, startProxy } from '../support/proxy-process.js';
import { type StandinDc, startStandinDc } from '../support/standin-dc.js';
import { gramjsHandshakeViaProxy } from '../support/telegram-client.js';
import {
  type DeploymentJson,
  freshTestBedPerTest,
  resolveContainerEnv,
  type TestBed,
} from './support/harness.js';

interface LinksJson {
  server: string;
  port: number;
  links: {
    user: string;
    secret: string;
    enabled: boolean;
    form: 'ee' | 'dd' | 'plain';
    tg: string;
    tme: string;
  }[];
}

describe('operator: the rendered proxy serves a real client', function () {
  this.timeout(120_000);
  let bed: TestBed;
  let dc: StandinDc;
  let proxy: ProxyProcess | undefined;
  let dataDir: string;

  beforeEach(async () => {
    dc = await startStandinDc();
    dataDir = mkdtempSync(join(tmpdir(), 'mtkube-pod-data-'));
  });
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
    await dc?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  freshTestBedPerTest((b) => {
    bed = b;
  });

  it('a gramjs client connects with the dd link from the links Secret', async () => {
    const clientPort = await freePort();
    const metricsPort = await freePort();
    await bed.startOperator();
    await bed.applyProxy('tg', {
      containerPort: clientPort,
      workers: 1,
      modes: ['secure', 'classic'],
      secrets: { count: 2 },
      service: { type: 'ClusterIP' },
      publicAddress: { host: '127.0.0.1', port: clientPort, externalIP: '127.0.0.1' },
      upstream: { dcAddresses: [{ dc: 2, address: `127.0.0.1:${dc.port}` }] },
      metrics: { port: metricsPort },
    });
    await bed.waitForCondition('tg', 'Ready', 'True');

    const dep = await bed.get<DeploymentJson>('deployment', 'tg');
    const container = dep.spec.template.spec.containers[0]!;
    const env = await resolveContainerEnv(bed, container, '127.0.0.1');
    // The pod's emptyDir at /data is a temporary directory here.
    const dataMount = container.volumeMounts?.find((m) => m.mountPath === env.DATA_DIR);
    expect(dataMount, 'DATA_DIR is a mounted volume').to.not.equal(undefined);
    env.DATA_DIR = dataDir;
    expect(env.BANNER).to.equal('off');

    proxy = await startProxy({ env, args: container.args ?? [], dataDir, port: clientPort });
    expect(proxy.output(), 'no secret in the logs').to.not.include(env.SECRET!.split(',')[0]);

    // The probes the Deployment declares answer on the declared port.
    const metrics = container.ports.find((p) => p.name === 'metrics')!.containerPort;
    expect((await fetch(`http://127.0.0.1:${metrics}/healthz`)).status).to.equal(200);

    const links = JSON.parse((await bed.secretData('tg-links'))['links.json']!) as LinksJson;
    expect(links.links.map((l) => `${l.secret} ${l.form}`)).to.deep.equal([
      'secret1 dd',
      'secret1 plain',
      'secret2 dd',
      'secret2 plain',
    ]);
    for (const form of ['dd', 'plain'] as const) {
      const link = new URL(links.links.find((l) => l.secret === 'secret2' && l.form === form)!.tme);
      expect(link.searchParams.get('server')).to.equal('127.0.0.1');
      const port = Number(link.searchParams.get('port'));
      const secret = link.searchParams.get('secret')!;
      const req = await gramjsHandshakeViaProxy({ dc, proxyPort: port, secret, dcId: 2 }).catch(
        (err: Error) => {
          throw new Error(`${form} link: ${err.message}\nproxy output:\n${proxy?.output()}`);
        },
      );
      expect(req.nonce, `${form} link`).to.be.instanceOf(Buffer);
    }

    // A raw client with the plain link of the first secret: packets go to the DC and back.
    const plain = new URL(links.links.find((l) => l.secret === 'secret1' && l.form === 'plain')!.tg);
    const client = await Obfs2Client.connect({
      port: Number(plain.searchParams.get('port')),
      secret: plain.searchParams.get('secret')!,
      dc: 2,
    });
    try {
      const payload = Buffer.alloc(64, 7);
      client.send(payload);
      expect((await client.receive()).payload.equals(payload)).to.equal(true);
    } finally {
      await client.close();
    }
  });
});
