// What attackers send to a proxy they have found: garbage, broken and oversized headers, slow
// trickles, floods of half-open connections and of replayed hellos. Afterwards real clients must
// still get through, the workers' memory must be back near where it started, and nothing may have
// crashed. Every loop here is bounded in count and time; everything stays on 127.0.0.1.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import { buildClientHello } from '../../../proxy/src/fake-tls/client.js';
import { FakeTlsClient } from '../../support/fake-tls-socket-client.js';
import { eventually, metrics, sample } from '../../support/http-get.js';
import type { MaskServer } from '../../support/mask-server.js';
import { startMaskedProxy, stopMaskedProxy } from '../../support/masked-proxy.js';
import { Obfs2Client } from '../../support/obfs2-client.js';
import { probe } from '../../support/probe.js';
import type { ProxyProcess } from '../../support/proxy-process.js';
import type { StandinDc } from '../../support/standin-dc.js';

const ALICE = '00112233445566778899aabbccddeeff';
const KEY = Buffer.from(ALICE, 'hex');
const HALF_OPEN = 1000;
/** Handshake deadline 2 s, then a masked relay lives at most 3 s. */
// The floods below come from 127.0.0.1 alone, to test the deadlines and the masking; the per-address
// limit (MAX_CONNECTIONS_PER_IP, 500 per worker by default) would refuse them first, and has tests
// of its own in under-attack.test.ts.
const ENV = { HANDSHAKE_TIMEOUT: '2', MASK_TIMEOUT: '3', MAX_CONNECTIONS_PER_IP: '0' };
const CLOSED_WITHIN_MS = 2_000 + 3_000 + 3_000;

async function workersRss(proxy: ProxyProcess): Promise<number> {
  return sample(await metrics(proxy), 'mtproxy_workers_resident_memory_bytes') ?? 0;
}

async function goodClientsGetThrough(proxy: ProxyProcess): Promise<void> {
  const p = randomBytes(512);
  p.writeUInt32LE(0x01020304, 0);
  const tls = await FakeTlsClient.connect({ port: proxy.port, secret: KEY, domain: 'example.com' });
  tls.send(p);
  expect((await tls.receive()).payload.equals(p)).to.equal(true);
  await tls.close();
  const dd = await Obfs2Client.connect({ port: proxy.port, secret: `dd${ALICE}` });
  dd.send(p);
  expect((await dd.receive()).payload.equals(p)).to.equal(true);
  await dd.close();
}

/** Opens `count` sockets in batches, each sending `first` (possibly nothing). */
async function openMany(port: number, count: number, first: Buffer): Promise<Socket[]> {
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i += 100) {
    const batch = await Promise.all(
      Array.from(
        { length: Math.min(100, count - i) },
        () =>
          new Promise<Socket>((resolve, reject) => {
            const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
            s.on('error', () => {});
            s.once('connect', () => {
              if (first.length > 0) s.write(first);
              resolve(s);
            });
            s.once('error', reject);
          }),
      ),
    );
    sockets.push(...batch);
  }
  return sockets;
}

function allClosedByPeer(sockets: readonly Socket[], timeoutMs: number): Promise<number> {
  return Promise.all(
    sockets.map(
      (s) =>
        new Promise<boolean>((resolve) => {
          if (s.destroyed || s.readableEnded) return resolve(true);
          const timer = setTimeout(() => resolve(false), timeoutMs);
          const done = (): void => {
            clearTimeout(timer);
            resolve(true);
          };
          s.resume();
          s.once('end', done);
          s.once('close', done);
        }),
    ),
  ).then((closed) => closed.filter(Boolean).length);
}

describe('hostile input: the proxy outlasts garbage, trickles, floods and replays', function () {
  this.timeout(90_000);
  let dc: StandinDc;
  let mask: MaskServer;
  let proxy: ProxyProcess;
  let baselineRss = 0;

  before(async () => {
    ({ dc, mask, proxy } = await startMaskedProxy({
      SECRET: ALICE,
      FAKE_TLS_DOMAIN: 'example.com',
      MODES: 'secure,tls',
      WORKERS: '2',
      ...ENV,
    }));
    // Warm up every path once (TLS, plain, masking) so lazy set-up is in the baseline.
    for (let i = 0; i < 4; i++) await goodClientsGetThrough(proxy);
    await probe(proxy.port, randomBytes(100), { until: 'mask-site', timeoutMs: 3_000 });
    await new Promise((r) => setTimeout(r, 1_500));
    baselineRss = await workersRss(proxy);
    expect(baselineRss).to.be.above(0);
  });
  after(() => stopMaskedProxy({ proxy, mask, dc }));

  it('random bytes of any size are masked or closed, never answered by the proxy itself', async () => {
    const sizes = Array.from({ length: 40 }, (_, i) => 1 + ((i * 997) % 4000));
    const results = await Promise.all(
      sizes.map((n) =>
        probe(proxy.port, randomBytes(n), { until: 'mask-site', timeoutMs: CLOSED_WITHIN_MS }),
      ),
    );
    for (const r of results) {
      const text = r.received.toString('latin1');
      // Either the mask site's answer, or its TLS answer to bytes that began like a record.
      expect(
        r.received.length === 0 ||
          text.includes('mask-site') ||
          r.received[0] === 0x15 ||
          r.received[0] === 0x16,
      ).to.be.true;
    }
  });

  it('truncated and oversized headers are masked or closed within the deadlines', async () => {
    const record = (len: number, body: Buffer): Buffer => {
      const h = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
      h.writeUInt16BE(len, 3);
      return Buffer.concat([h, body]);
    };
    const { hello } = buildClientHello({
      secret: KEY,
      domain: 'example.com',
      now: Math.floor(Date.now() / 1000),
      random: randomBytes,
    });
    const hugeHandshake = record(
      100,
      Buffer.concat([Buffer.from([0x01, 0xff, 0xff, 0xff]), randomBytes(96)]),
    );
    const cases: Buffer[] = [
      hello.subarray(0, 200), // a hello cut short, then the sender goes quiet
      record(0xffff, randomBytes(50)), // a record longer than TLS allows
      hugeHandshake, // a handshake claiming 16 MB
      Buffer.concat(Array.from({ length: 20 }, () => record(1, Buffer.from([0x01])))), // too many records
      randomBytes(30), // half an obfuscated2 header
      Buffer.alloc(70_000, 0x16), // more than any handshake needs
    ];
    const results = await Promise.all(
      cases.map((c) => probe(proxy.port, c, { timeoutMs: CLOSED_WITHIN_MS, end: false })),
    );
    for (const [i, r] of results.entries()) expect(r.closedByPeer, `case ${i}`).to.equal(true);
  });

  it('a slowloris trickle is cut off at the deadlines', async () => {
    const trickle = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01]), randomBytes(74)]);
    const pieces = Array.from(trickle, (b) => Buffer.from([b]));
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        probe(proxy.port, trickle, { pieces, pauseMs: 100, timeoutMs: CLOSED_WITHIN_MS }),
      ),
    );
    for (const r of results) expect(r.closedByPeer).to.equal(true);
  });

  it(`${HALF_OPEN} half-open connections are all closed, and a real client gets through meanwhile`, async () => {
    const quiet = await openMany(proxy.port, HALF_OPEN / 2, Buffer.alloc(0));
    const partial = await openMany(proxy.port, HALF_OPEN / 2, Buffer.from([0x16, 0x03, 0x01]));
    await goodClientsGetThrough(proxy);
    const closed = await allClosedByPeer([...quiet, ...partial], CLOSED_WITHIN_MS + 4_000);
    for (const s of [...quiet, ...partial]) s.destroy();
    expect(closed).to.equal(HALF_OPEN);
  });

  it('a flood of replayed hellos reaches no DC and is masked', async () => {
    const client = await FakeTlsClient.connect({ port: proxy.port, secret: KEY, domain: 'example.com' });
    const p = randomBytes(8);
    p.writeUInt32LE(0x01020304, 0);
    client.send(p);
    await client.receive();
    await client.close();
    const dcBefore = dc.stats.connections;
    const start = await metrics(proxy);
    const before = sample(start, 'mtproxy_replays_blocked_total') ?? 0;
    const maskedBefore = sample(start, 'mtproxy_masked_connections_total') ?? 0;
    const floods = await openMany(proxy.port, 200, client.hello);
    const text = await eventually(async () => {
      const t = await metrics(proxy);
      return (sample(t, 'mtproxy_replays_blocked_total') ?? 0) >= before + 200 ? t : undefined;
    });
    expect(sample(text, 'mtproxy_replays_blocked_total')).to.equal(before + 200);
    await eventually(async () =>
      (sample(await metrics(proxy), 'mtproxy_masked_connections_total') ?? 0) >= maskedBefore + 200
        ? true
        : undefined,
    );
    for (const s of floods) s.destroy();
    expect(dc.stats.connections).to.equal(dcBefore);
  });

  it('afterwards: clients get through, every connection is gone, memory is near baseline, no worker died', async () => {
    await goodClientsGetThrough(proxy);
    const text = await eventually(async () => {
      const t = await metrics(proxy);
      return sample(t, 'mtproxy_connections') === 0 ? t : undefined;
    }, CLOSED_WITHIN_MS + 4_000);
    expect(sample(text, 'mtproxy_worker_restarts_total')).to.equal(0);
    expect(sample(text, 'mtproxy_workers')).to.equal(2);
    expect(mask.open(), 'no masked relay left open').to.equal(0);
    // Give the collector a moment; then the workers must be within 48 MiB of where they started.
    const rss = await eventually(
      async () => {
        const now = await workersRss(proxy);
        return now < baselineRss + 48 * 2 ** 20 ? now : undefined;
      },
      8_000,
      500,
    );
    console.log(
      `      workers' RSS: baseline ${(baselineRss / 2 ** 20).toFixed(1)} MiB, after ${(rss / 2 ** 20).toFixed(1)} MiB`,
    );
    expect(proxy.child.exitCode).to.equal(null);
  });
});
