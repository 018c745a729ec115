// Site profiles end to end: a local node:tls server stands for the real site behind each fake-TLS
// domain; the proxy measures it, and a prober compares the proxy's answer to a hello with the
// site's own answer to the same hello.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { buildClientHello } from '../../../proxy/src/fake-tls/client.js';
import { parseServerFlight, type TimedChunk } from '../../../proxy/src/fake-tls/server-flight.js';
import { measureResponse, probeSite } from '../../../proxy/src/fake-tls/site-prober.js';
import { verifyServerHello } from '../../support/fake-tls-client-side.js';
import { FakeTlsClient } from '../../support/fake-tls-socket-client.js';
import { eventually, httpGet, parseStats, sample } from '../../support/http-get.js';
import { type ProxyProcess, startProxy } from '../../support/proxy-process.js';
import { type StandinDc, startStandinDc } from '../../support/standin-dc.js';
import { startTlsSite, type TlsSite } from '../../support/tls-site.js';

const ALICE = '00112233445566778899aabbccddeeff';
const KEY = Buffer.from(ALICE, 'hex');
const QUICK = { timeoutMs: 3000, quietMs: 150 };

/** Sends `hello` to 127.0.0.1:port and returns every chunk until `done(bytes)` or a quiet period. */
function exchange(port: number, hello: Buffer, done?: (bytes: Buffer) => boolean): Promise<TimedChunk[]> {
  return new Promise((resolve, reject) => {
    const chunks: TimedChunk[] = [];
    let got = Buffer.alloc(0);
    let quiet: NodeJS.Timeout | undefined;
    const start = performance.now();
    const socket = connect({ host: '127.0.0.1', port });
    const finish = (): void => {
      clearTimeout(quiet);
      clearTimeout(deadline);
      socket.destroy();
      resolve(chunks);
    };
    const deadline = setTimeout(() => (chunks.length > 0 ? finish() : reject(new Error('no answer'))), 5000);
    socket.on('connect', () => socket.write(hello));
    socket.on('data', (data: Buffer) => {
      chunks.push({ at: performance.now() - start, data });
      got = Buffer.concat([got, data]);
      if (done?.(got)) return finish();
      clearTimeout(quiet);
      quiet = setTimeout(finish, 300);
    });
    socket.on('error', reject);
  });
}

function shapeOfAnswer(chunks: readonly TimedChunk[]) {
  const flight = parseServerFlight(chunks);
  return {
    extensions: flight.extensions.map((e) => `${e.type.toString(16)}/${e.data.length / 2}`),
    ccs: flight.ccs,
    records: flight.records.length,
    wireBytes: flight.records.reduce((n, r) => n + 5 + r, 0),
    cipher: flight.cipherSuite,
  };
}

function appHello(domain: string, shape: 'classic' | 'modern') {
  return buildClientHello({
    secret: KEY,
    domain,
    now: Math.floor(Date.now() / 1000),
    random: randomBytes,
    shape,
  });
}

describe('site profiles: the proxy measures the real site', function () {
  this.timeout(60_000);
  let small: TlsSite;
  let large: TlsSite;
  let split: TlsSite;

  before(async () => {
    small = await startTlsSite({ chains: { default: { key: 'ec', intermediates: 0 } } });
    large = await startTlsSite({ chains: { default: { key: 2048, intermediates: 2 } }, maxRecord: 1024 });
    split = await startTlsSite({ chains: { default: { key: 'ec', intermediates: 0 } }, helloAloneMs: 30 });
  });
  after(async () => {
    await Promise.all([small?.stop(), large?.stop(), split?.stop()]);
  });

  it('reads the ServerHello layout, the CCS placement and the encrypted records of a site', async () => {
    const s = await probeSite({ host: '127.0.0.1', port: small.port, domain: 'site.test' }, 'classic', QUICK);
    // OpenSSL writes supported_versions before key_share: the opposite of our fallback order.
    expect(s.extensions.map((e) => e.type)).to.deep.equal([0x2b, 0x33]);
    expect(s.ccs).to.equal('with-hello');
    expect(s.records.length).to.be.greaterThan(0);
  });

  it('gives two different shapes for two different sites', async () => {
    const a = await probeSite({ host: '127.0.0.1', port: small.port, domain: 'site.test' }, 'modern', QUICK);
    const b = await probeSite({ host: '127.0.0.1', port: large.port, domain: 'site.test' }, 'modern', QUICK);
    const bytes = (r: readonly number[]): number => r.reduce((n, x) => n + 5 + x, 0);
    expect(bytes(b.records) - bytes(a.records)).to.be.greaterThan(1500);
    // The large site's 1 KB record limit cuts its certificate into more records.
    expect(b.records.length).to.be.greaterThan(a.records.length);
  });

  it('sees a ChangeCipherSpec that comes in a later packet than the ServerHello', async () => {
    const s = await probeSite({ host: '127.0.0.1', port: split.port, domain: 'site.test' }, 'classic', QUICK);
    expect(s.ccs).to.equal('separate');
  });

  it('measures the site’s records and pacing after a full handshake and a page request', async () => {
    const paced = await startTlsSite({
      chains: { default: { key: 'ec', intermediates: 0 } },
      page: { records: 6, size: 3000, gapMs: 40 },
    });
    try {
      const r = await measureResponse({ host: '127.0.0.1', port: paced.port, domain: 'site.test' }, QUICK);
      expect(r.records.filter((n) => n >= 3000).length, 'the page records').to.be.at.least(6);
      expect(r.gapsMs.filter((g) => g >= 20).length, 'gaps near 40 ms').to.be.at.least(4);
    } finally {
      await paced.stop();
    }
  });

  it('rejects, with a clear error, a target that is not a TLS server or not there', async () => {
    const dead = await startTlsSite({ chains: { default: { key: 'ec', intermediates: 0 } } });
    const port = dead.port;
    await dead.stop();
    const err = await probeSite({ host: '127.0.0.1', port, domain: 'site.test' }, 'classic', QUICK).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(err?.code).to.equal('ERR_PROBE_CONNECT');
  });
});

describe('site profiles: a prober cannot tell our answer from the site by layout or sizes', function () {
  this.timeout(120_000);
  let dc: StandinDc;
  let site: TlsSite;
  let proxy: ProxyProcess;
  const dataDir = mkdtempSync(join(tmpdir(), 'mtkube-profile-'));
  const env = (port: number): Record<string, string> => ({
    SECRET: ALICE,
    FAKE_TLS_DOMAIN: 'example.com,www.example.com',
    MASK_HOST: '127.0.0.1',
    MASK_PORT: String(port),
    HANDSHAKE_TIMEOUT: '2',
  });

  before(async () => {
    dc = await startStandinDc();
    // One server behind both names, as a CDN is: a small chain for one, a large one for the other.
    site = await startTlsSite({
      chains: {
        default: { key: 'ec', intermediates: 0 },
        'example.com': { key: 2048, intermediates: 1 },
        'www.example.com': { key: 2048, intermediates: 3 },
      },
    });
    proxy = await startProxy({ dataDir, env: { ...env(site.port), DC_ADDRS: `2=127.0.0.1:${dc.port}` } });
  });
  after(async () => {
    await proxy?.stop();
    await site?.stop();
    await dc?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  for (const domain of ['example.com', 'www.example.com']) {
    for (const shape of ['classic', 'modern'] as const) {
      it(`answers a ${shape} hello for ${domain} with the site's extensions, CCS placement and flight size`, async () => {
        const { hello, clientRandom } = appHello(domain, shape);
        const ours = await exchange(
          proxy.port,
          hello,
          (b) => verifyServerHello(b, clientRandom, KEY).kind === 'ok',
        );
        const theirs = await exchange(site.port, hello);
        const o = shapeOfAnswer(ours);
        const t = shapeOfAnswer(theirs);
        expect(o.extensions, 'extension order and lengths').to.deep.equal(t.extensions);
        expect(o.ccs, 'CCS placement').to.equal(t.ccs);
        expect(o.cipher, 'cipher').to.equal(t.cipher);
        // The apps accept one encrypted record only: it carries the site's whole flight.
        expect(o.records).to.equal(1);
        expect(t.records).to.be.greaterThan(1);
        // RSA signatures have a fixed size, so this site's flight never varies: ours is equal.
        expect(o.wireBytes, 'first-flight bytes').to.equal(t.wireBytes);
      });
    }
  }

  it('gives each domain its own shape', async () => {
    const size = async (domain: string): Promise<number> => {
      const { hello, clientRandom } = appHello(domain, 'modern');
      const ours = await exchange(
        proxy.port,
        hello,
        (b) => verifyServerHello(b, clientRandom, KEY).kind === 'ok',
      );
      return shapeOfAnswer(ours).wireBytes;
    };
    expect((await size('www.example.com')) - (await size('example.com'))).to.be.greaterThan(1000);
  });

  it('shows each profile, its source and age in /stats and /metrics', async () => {
    const stats = parseStats((await httpGet(`http://127.0.0.1:${proxy.statsPort}/stats`)).body);
    expect(stats.get('tls_profile_source:example.com')).to.equal('measured');
    expect(stats.get('tls_profile_source:www.example.com')).to.equal('measured');
    expect(Number(stats.get('tls_profile_age_seconds:example.com'))).to.be.within(0, 120);
    expect(stats.get('tls_profile_flight_bytes:example.com')).to.match(/^\d+-\d+$/);
    expect(stats.get('tls_profile_site_layout:example.com')).to.match(/^records=\d+(-\d+)? ccs=with-hello$/);
    const metrics = (await httpGet(`http://127.0.0.1:${proxy.metricsPort}/metrics`)).body;
    const age = sample(
      metrics,
      'mtproxy_fake_tls_profile_age_seconds{domain="example.com",source="measured"}',
    );
    expect(age).to.be.within(0, 120);
    expect(sample(metrics, 'mtproxy_fake_tls_profile_measurements_total{result="ok"}')).to.equal(2);
  });

  it('sends records after the handshake small first, growing, and small again after a pause', async () => {
    const client = await FakeTlsClient.connect({ port: proxy.port, secret: KEY, domain: 'example.com' });
    const sizes: number[] = [];
    let pending = Buffer.alloc(0);
    client.rawSocket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
        expect(pending[0]).to.equal(0x17);
        sizes.push(pending.readUInt16BE(3));
        pending = pending.subarray(5 + pending.readUInt16BE(3));
      }
    });
    const echo = async (n: number): Promise<void> => {
      const p = randomBytes(n);
      p.writeUInt32LE(0x01020304, 0);
      client.send(p);
      const back = await client.receive(10_000);
      expect(back.payload.equals(p)).to.equal(true);
    };
    for (let i = 0; i < 5; i++) await echo(64 * 1024);
    // Wire lengths of a TLS 1.3 server: 1369, 4229 and 16384 bytes of data plus 17.
    const burst = [...sizes];
    expect(
      burst.slice(0, 40).every((s) => s <= 1386),
      'first 40 records at most 1386 bytes',
    ).to.equal(true);
    expect(
      burst.slice(40, 80).every((s) => s <= 4246),
      'next 40 at most 4246',
    ).to.equal(true);
    expect(
      burst.slice(40, 80).some((s) => s > 1386),
      'and larger than the first',
    ).to.equal(true);
    expect(
      burst.slice(80).some((s) => s > 4246),
      'then up to 16401',
    ).to.equal(true);
    expect(Math.max(...burst)).to.be.at.most(16401);
    await new Promise((r) => setTimeout(r, 1300));
    const before = sizes.length;
    await echo(8 * 1024);
    expect(
      sizes.slice(before).every((s) => s <= 1386),
      'small again after 1 s idle',
    ).to.equal(true);
    await client.close();
  });

  it('answers with the cached profile when the site is down at the next start, and warns', async () => {
    const { hello, clientRandom } = appHello('example.com', 'modern');
    const before = shapeOfAnswer(
      await exchange(proxy.port, hello, (b) => verifyServerHello(b, clientRandom, KEY).kind === 'ok'),
    );
    await proxy.stop();
    const port = site.port;
    await site.stop();
    proxy = await startProxy({ dataDir, env: { ...env(port), DC_ADDRS: `2=127.0.0.1:${dc.port}` } });
    await proxy.waitForOutput(/could not be measured; answering with the last good profile/);
    const stats = parseStats((await httpGet(`http://127.0.0.1:${proxy.statsPort}/stats`)).body);
    expect(stats.get('tls_profile_source:example.com')).to.equal('cache');
    const again = appHello('example.com', 'modern');
    const after = shapeOfAnswer(
      await exchange(
        proxy.port,
        again.hello,
        (b) => verifyServerHello(b, again.clientRandom, KEY).kind === 'ok',
      ),
    );
    expect(after.extensions).to.deep.equal(before.extensions);
    expect(after.wireBytes).to.equal(before.wireBytes);
  });

  it('answers with the documented fallback when the site was never measured, and warns', async () => {
    const port = site.port; // stopped by the test above
    const fresh = await startProxy({ env: { ...env(port), DC_ADDRS: `2=127.0.0.1:${dc.port}` } });
    try {
      await fresh.waitForOutput(/could not be measured; answering with the fallback shape/);
      const stats = parseStats((await httpGet(`http://127.0.0.1:${fresh.statsPort}/stats`)).body);
      expect(stats.get('tls_profile_source:example.com')).to.equal('fallback');
      expect(stats.get('tls_profile_age_seconds:example.com')).to.equal('-1');
      const { hello, clientRandom } = appHello('example.com', 'modern');
      const o = shapeOfAnswer(
        await exchange(fresh.port, hello, (b) => verifyServerHello(b, clientRandom, KEY).kind === 'ok'),
      );
      expect(o.extensions).to.deep.equal(['33/36', '2b/2']);
      expect(o.wireBytes).to.be.within(2500 + 5, 4699 + 5);
      await eventually(async () =>
        sample(
          (await httpGet(`http://127.0.0.1:${fresh.metricsPort}/metrics`)).body,
          'mtproxy_fake_tls_profile_measurements_total{result="failed"}',
        ) === 2
          ? true
          : undefined,
      );
    } finally {
      await fresh.stop();
    }
  });
});

describe('site profiles: TLS_RECORD_TIMING=site spaces our records like the site’s page', function () {
  this.timeout(60_000);
  let dc: StandinDc;
  let site: TlsSite;
  let proxy: ProxyProcess;

  before(async () => {
    dc = await startStandinDc();
    site = await startTlsSite({
      chains: { default: { key: 'ec', intermediates: 0 } },
      page: { records: 8, size: 2000, gapMs: 30 },
    });
    proxy = await startProxy({
      env: {
        SECRET: ALICE,
        FAKE_TLS_DOMAIN: 'example.com',
        MASK_HOST: '127.0.0.1',
        MASK_PORT: String(site.port),
        TLS_RECORD_TIMING: 'site',
        DC_ADDRS: `2=127.0.0.1:${dc.port}`,
      },
    });
  });
  after(async () => {
    await proxy?.stop();
    await site?.stop();
    await dc?.stop();
  });

  it('holds each burst for one of the site’s gaps, and every byte still arrives', async () => {
    const client = await FakeTlsClient.connect({ port: proxy.port, secret: KEY, domain: 'example.com' });
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const p = randomBytes(1000);
      p.writeUInt32LE(0x01020304, 0);
      const began = performance.now();
      client.send(p);
      const back = await client.receive(10_000);
      times.push(performance.now() - began);
      expect(back.payload.equals(p)).to.equal(true);
    }
    // Loopback answers in well under a millisecond; the site paused about 30 ms between records.
    expect(times.filter((t) => t >= 15).length).to.be.at.least(4);
    await client.close();
  });

  it('sizes records like the site’s page: full records of its size from the first one', async () => {
    const client = await FakeTlsClient.connect({ port: proxy.port, secret: KEY, domain: 'example.com' });
    const sizes: number[] = [];
    let pending = Buffer.alloc(0);
    client.rawSocket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
        sizes.push(pending.readUInt16BE(3));
        pending = pending.subarray(5 + pending.readUInt16BE(3));
      }
    });
    const p = randomBytes(64 * 1024);
    p.writeUInt32LE(0x01020304, 0);
    client.send(p);
    expect((await client.receive(10_000)).payload.equals(p)).to.equal(true);
    // The site wrote its page 2000 bytes at a time: records of 2017 on the wire.
    expect(Math.max(...sizes)).to.equal(2017);
    expect(sizes.filter((s) => s === 2017).length).to.be.at.least(30);
    expect(sizes[0]).to.equal(2017);
    await client.close();
  });
});
