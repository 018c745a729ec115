import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { expect } from 'chai';
import { eventually, httpGet, sample } from '../../support/http-get.js';
import { Obfs2Client } from '../../support/obfs2-client.js';
import { startProxy } from '../../support/proxy-process.js';
import { type StandinDc, startStandinDc } from '../../support/standin-dc.js';

const ALICE = '00112233445566778899aabbccddeeff';
const secret = Buffer.from(ALICE, 'hex');

/** Worker pids: the children of the primary, read from /proc. */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

describe('proxy lifecycle: limits, worker restarts and draining', function () {
  this.timeout(60_000);
  let dc: StandinDc;

  before(async () => {
    dc = await startStandinDc();
  });
  after(async () => dc?.stop());

  it('enforces MAX_CONNECTIONS exactly, refusing and counting the next connection', async () => {
    const proxy = await startProxy({
      env: { SECRET: ALICE, MAX_CONNECTIONS: '3', DC_ADDRS: `2=127.0.0.1:${dc.port}` },
    });
    const clients: Obfs2Client[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await Obfs2Client.connect({ port: proxy.port, secret, dc: 2 });
        c.send(Buffer.alloc(8, i));
        await c.receive();
        clients.push(c);
      }
      const fourth = connect(proxy.port, '127.0.0.1');
      await new Promise((r) => fourth.on('close', r));
      const text = await eventually(async () => {
        const t = (await httpGet(`http://127.0.0.1:${proxy.metricsPort}/metrics`)).body;
        return sample(t, 'mtproxy_connections_refused_total{reason="max_connections"}') === 1 ? t : undefined;
      });
      expect(sample(text, 'mtproxy_connections')).to.equal(3);
      // The three admitted clients still work.
      for (const c of clients) {
        c.send(Buffer.alloc(8, 7));
        expect((await c.receive()).payload.equals(Buffer.alloc(8, 7))).to.equal(true);
      }
    } finally {
      for (const c of clients) c.close();
      await proxy.stop();
    }
  });

  it('restarts a worker that dies, keeps serving, and counts the restart', async () => {
    const proxy = await startProxy({
      env: { SECRET: ALICE, WORKERS: '2', DC_ADDRS: `2=127.0.0.1:${dc.port}` },
    });
    try {
      const pids = childPids(proxy.child.pid!);
      expect(pids).to.have.length(2);
      process.kill(pids[0]!, 'SIGKILL');
      await proxy.waitForOutput(/"message":"worker restarted"/);
      expect(childPids(proxy.child.pid!)).to.have.length(2);
      await eventually(async () => {
        const t = (await httpGet(`http://127.0.0.1:${proxy.metricsPort}/metrics`)).body;
        return sample(t, 'mtproxy_worker_restarts_total') === 1 && sample(t, 'mtproxy_workers') === 2
          ? t
          : undefined;
      });
      for (let i = 0; i < 6; i++) {
        const c = await Obfs2Client.connect({ port: proxy.port, secret, dc: 2 });
        c.send(Buffer.alloc(8, 1));
        await c.receive();
        c.close();
      }
    } finally {
      await proxy.stop();
    }
  });

  it('on SIGTERM stops accepting, lets open connections finish within DRAIN_TIMEOUT, then exits 0', async () => {
    const proxy = await startProxy({
      env: { SECRET: ALICE, DRAIN_TIMEOUT: '3', DC_ADDRS: `2=127.0.0.1:${dc.port}` },
    });
    const open = await Obfs2Client.connect({ port: proxy.port, secret, dc: 2 });
    open.send(Buffer.alloc(8, 1));
    await open.receive();
    const started = Date.now();
    proxy.child.kill('SIGTERM');
    await proxy.waitForOutput(/"message":"drain started"/);
    // The open connection still relays during the drain...
    open.send(Buffer.alloc(8, 2));
    expect((await open.receive()).payload.equals(Buffer.alloc(8, 2))).to.equal(true);
    // ...new ones are refused, once the worker has received the drain order (the primary logs
    // "drain started" just before sending it, so allow a few tries)...
    const tryConnect = (): Promise<boolean> =>
      new Promise<boolean>((resolve) => {
        const late = connect(proxy.port, '127.0.0.1');
        late.on('error', () => resolve(true));
        late.on('connect', () => {
          late.destroy();
          resolve(false);
        });
      });
    let refused = false;
    for (let i = 0; i < 20 && !refused; i++) {
      refused = await tryConnect();
      if (!refused) await new Promise((r) => setTimeout(r, 100));
    }
    expect(refused).to.equal(true);
    // ...and the proxy ends it when the drain time is up.
    await open.waitForClose(10_000);
    expect(await proxy.exited).to.equal(0);
    expect(Date.now() - started).to.be.within(2_500, 9_000);
  });
});

describe('backpressure', function () {
  this.timeout(60_000);

  it('a client that sends fast but never reads makes the proxy stop reading, not buffer without limit', async () => {
    const dc = await startStandinDc();
    const proxy = await startProxy({ env: { SECRET: ALICE, DC_ADDRS: `2=127.0.0.1:${dc.port}` } });
    const client = await Obfs2Client.connect({ port: proxy.port, secret, dc: 2 });
    try {
      const worker = childPids(proxy.child.pid!)[0]!;
      const rss = (): number =>
        Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${worker}/status`, 'utf8'))![1]) * 1024;
      const before = rss();
      client.rawSocket.pause(); // never read the echoes
      const packet = Buffer.alloc(64 * 1024, 5);
      let queued = 0;
      // Offer 256 MiB; backpressure must make our own socket refuse long before that.
      for (let i = 0; i < 4096 && client.rawSocket.writableLength < 32 * 1024 * 1024; i++) {
        client.send(packet);
        queued += packet.length;
        if (i % 64 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      await new Promise((r) => setTimeout(r, 500));
      expect(client.rawSocket.writableLength, 'bytes stuck on the client side').to.be.above(8 * 1024 * 1024);
      // Had the proxy buffered instead of pausing, the loop would have offered all 256 MiB and the
      // worker would hold most of it; what it may hold is the sockets' buffers plus garbage from
      // the cipher output that the collector has not reclaimed yet.
      expect(rss() - before, 'worker memory growth').to.be.below(96 * 1024 * 1024);
      expect(queued).to.be.above(32 * 1024 * 1024);
    } finally {
      client.close();
      await proxy.stop();
      await dc.stop();
    }
  });
});
