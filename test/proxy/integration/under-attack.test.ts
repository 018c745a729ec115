// Attacks on a proxy with a public link, as issue 13 reproduced them on 127.0.0.1: a flood of
// garbage handshakes from a few neighbouring hosts, silent connections a prober times, /metrics read
// from outside, a mask target pointed at our own metrics port, a secret file left world-readable,
// and a worker running out of file descriptors. Real processes and sockets only; every loop bounded.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { FakeTlsClient } from '../../support/fake-tls-socket-client.js';
import { eventually, httpGet, metrics, sample } from '../../support/http-get.js';
import type { MaskServer } from '../../support/mask-server.js';
import { startMaskedProxy, stopMaskedProxy } from '../../support/masked-proxy.js';
import { Obfs2Client } from '../../support/obfs2-client.js';
import { freePort, type ProxyProcess, startProxy } from '../../support/proxy-process.js';
import type { StandinDc } from '../../support/standin-dc.js';

const ALICE = '00112233445566778899aabbccddeeff';
const KEY = Buffer.from(ALICE, 'hex');

/** mtproxy_handshakes_total of one failure reason. */
function handshakes(text: string, result: string): number {
  const line = text
    .split('\n')
    .find((l) => l.startsWith('mtproxy_handshakes_total{') && l.includes(`result="${result}"`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function echoThroughDd(proxy: ProxyProcess, localAddress?: string): Promise<void> {
  const p = randomBytes(64);
  p.writeUInt32LE(0x01020304, 0);
  const dd = await Obfs2Client.connect({ port: proxy.port, secret: `dd${ALICE}`, localAddress });
  dd.send(p);
  expect((await dd.receive()).payload.equals(p)).to.equal(true);
  await dd.close();
}

/** Opens a connection from `localAddress`, sends `bytes`, resolves once it is connected. */
function openFrom(port: number, localAddress: string, bytes: Buffer): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress, allowHalfOpen: true });
    s.on('error', () => {});
    s.once('connect', () => {
      if (bytes.length > 0) s.write(bytes);
      resolve(s);
    });
    s.once('error', reject);
  });
}

describe('under attack: a flood of garbage handshakes and a prober', function () {
  this.timeout(90_000);
  let dc: StandinDc;
  let mask: MaskServer;
  let proxy: ProxyProcess;

  before(async () => {
    ({ dc, mask, proxy } = await startMaskedProxy({
      SECRET: ALICE,
      FAKE_TLS_DOMAIN: 'example.com',
      MODES: 'secure,tls',
      WORKERS: '1',
      MASK_TIMEOUT: '3',
    }));
    // A client that already uses the proxy from 127.0.0.1.
    await echoThroughDd(proxy);
  });
  after(() => stopMaskedProxy({ proxy, mask, dc }));

  it('garbage from 127.0.0.2..5 is throttled before any crypto and masked like any bad handshake; the known client still gets through', async () => {
    const before = await metrics(proxy);
    const maskedBefore = mask.connections.length;
    const sockets: Socket[] = [];
    const PER_HOST = 60;
    for (let round = 0; round < PER_HOST; round++) {
      sockets.push(
        ...(await Promise.all(
          [2, 3, 4, 5].map((h) => openFrom(proxy.port, `127.0.0.${h}`, randomBytes(64))),
        )),
      );
    }
    const after = await eventually(async () => {
      const t = await metrics(proxy);
      const failed = handshakes(t, 'bad-secret') + handshakes(t, 'throttled');
      return failed - handshakes(before, 'bad-secret') - handshakes(before, 'throttled') >= 4 * PER_HOST
        ? t
        : undefined;
    });
    // Each host may cost 40 trials at once, and the /24 160: the rest were never tried.
    const tried = handshakes(after, 'bad-secret') - handshakes(before, 'bad-secret');
    expect(tried).to.be.at.most(160 + 20);
    expect(handshakes(after, 'throttled') - handshakes(before, 'throttled')).to.be.at.least(
      4 * PER_HOST - 180,
    );
    // Throttled or not, the mask site got every one of them with its bytes.
    await eventually(async () => (mask.connections.length - maskedBefore >= 4 * PER_HOST ? true : undefined));
    await echoThroughDd(proxy);
    const tls = await FakeTlsClient.connect({ port: proxy.port, secret: KEY, domain: 'example.com' });
    await tls.close();
    for (const s of sockets) s.destroy();
  });

  it('a silent connection reaches the mask site within about a second, not at the 10 s handshake deadline', async () => {
    const before = mask.connections.length;
    const opened = Date.now();
    const s = await openFrom(proxy.port, '127.0.0.9', Buffer.alloc(0));
    await eventually(async () => (mask.connections.length > before ? true : undefined), 5_000, 50);
    const elapsed = Date.now() - opened;
    s.destroy();
    expect(elapsed).to.be.below(2_000);
  });

  it('a partial hello reaches the mask site within about a second, with the bytes sent so far', async () => {
    const before = mask.connections.length;
    const partial = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
    const opened = Date.now();
    const s = await openFrom(proxy.port, '127.0.0.10', partial);
    const conn = await eventually(
      async () => mask.connections.slice(before).find((c) => c.received.equals(partial)),
      5_000,
      50,
    );
    expect(conn).to.not.equal(undefined);
    expect(Date.now() - opened).to.be.below(2_000);
    s.destroy();
  });

  it('no worker restarted and the DC saw only the real clients', async () => {
    const text = await metrics(proxy);
    expect(sample(text, 'mtproxy_worker_restarts_total')).to.equal(0);
    expect(dc.stats.connections).to.be.at.most(4);
  });
});

describe('under attack: endpoints, files and the mask target', function () {
  this.timeout(60_000);

  it('/metrics answers 404 to an address outside METRICS_ALLOW, and the metrics to one inside; /healthz answers both', async () => {
    const proxy = await startProxy({ env: { SECRET: ALICE, METRICS_ALLOW: '127.0.0.2/32' } });
    try {
      const url = `http://127.0.0.1:${proxy.metricsPort}`;
      const outside = await httpGet(`${url}/metrics`, { localAddress: '127.0.0.1' });
      expect(outside.status).to.equal(404);
      expect(outside.body).to.not.include('mtproxy_');
      const inside = await httpGet(`${url}/metrics`, { localAddress: '127.0.0.2' });
      expect(inside.status).to.equal(200);
      expect(inside.body).to.include('mtproxy_handshakes_total');
      expect((await httpGet(`${url}/healthz`, { localAddress: '127.0.0.1' })).status).to.equal(200);
    } finally {
      await proxy.stop();
    }
  });

  it('a mask target equal to the metrics port is refused: failed connections are held, the port never gets them', async () => {
    const metricsPort = await freePort();
    const proxy = await startProxy({
      env: {
        SECRET: ALICE,
        FAKE_TLS_DOMAIN: 'example.com',
        MASK_HOST: '127.0.0.1',
        MASK_PORT: String(metricsPort),
        METRICS_PORT: String(metricsPort),
      },
    });
    try {
      await proxy.waitForOutput(/point at this proxy itself; masking is OFF/);
      const s = await openFrom(
        proxy.port,
        '127.0.0.1',
        Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'),
      );
      const received: Buffer[] = [];
      s.on('data', (d: Buffer) => received.push(d));
      await new Promise((r) => setTimeout(r, 1_500));
      s.destroy();
      expect(Buffer.concat(received).toString()).to.not.include('mtproxy_');
    } finally {
      await proxy.stop();
    }
  });

  it('a secret file that existed world-readable is 0600 after the start, with the same secret', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'mtkube-attack-'));
    try {
      mkdirSync(dataDir, { recursive: true });
      const path = join(dataDir, 'secret');
      writeFileSync(path, `${ALICE}\n`);
      chmodSync(path, 0o644);
      const proxy = await startProxy({ dataDir });
      await proxy.stop();
      expect(statSync(path).mode & 0o777).to.equal(0o600);
      expect(readFileSync(path, 'utf8').trim()).to.equal(ALICE);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('under attack: a worker out of file descriptors', function () {
  this.timeout(90_000);

  it('keeps serving: no restart, no client of it dropped; once the flood leaves, new clients get through', async () => {
    const dc = await (await import('../../support/standin-dc.js')).startStandinDc();
    const proxy = await startProxy({
      env: { SECRET: ALICE, DC_ADDRS: `2=127.0.0.1:${dc.port}`, MAX_CONNECTIONS_PER_IP: '0', MASK: 'off' },
    });
    const flood: Socket[] = [];
    try {
      const worker = execFileSync('pgrep', ['-P', String(proxy.child.pid)], { encoding: 'utf8' })
        .trim()
        .split('\n')[0]!;
      // A long-lived client of this worker, then the worker's descriptors cut down under it.
      const p = randomBytes(64);
      p.writeUInt32LE(0x01020304, 0);
      const alive = await Obfs2Client.connect({ port: proxy.port, secret: `dd${ALICE}` });
      alive.send(p);
      await alive.receive();
      execFileSync('prlimit', ['--pid', worker, '--nofile=64:64']);
      for (let i = 0; i < 120; i++) flood.push(await openFrom(proxy.port, '127.0.0.3', Buffer.alloc(0)));
      // Several counter reports (one a second) with no descriptor left.
      await new Promise((r) => setTimeout(r, 3_000));
      alive.send(p);
      expect((await alive.receive()).payload.equals(p)).to.equal(true);
      for (const s of flood.splice(0)) s.destroy();
      await alive.close();
      await new Promise((r) => setTimeout(r, 500));
      await echoThroughDd(proxy);
      const text = await metrics(proxy);
      expect(sample(text, 'mtproxy_worker_restarts_total')).to.equal(0);
      expect(execFileSync('pgrep', ['-P', String(proxy.child.pid)], { encoding: 'utf8' }).trim()).to.equal(
        worker,
      );
    } finally {
      for (const s of flood) s.destroy();
      await proxy.stop();
      await dc.stop();
    }
  });

  it('says at start that MAX_CONNECTIONS does not fit the descriptor limit, and what it does instead', async () => {
    const proxy = await startProxy({ env: { SECRET: ALICE }, wrap: ['prlimit', '--nofile=1024:1024', '--'] });
    try {
      await proxy.waitForOutput(/each worker accepts at most 480 connections/);
    } finally {
      await proxy.stop();
    }
  });
});
