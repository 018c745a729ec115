import { randomBytes } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { expect } from 'chai';
import { buildClientHello } from '../../../proxy/src/fake-tls/client.js';
import { FakeTlsClient } from '../../support/fake-tls-socket-client.js';
import { eventually, metrics, sample } from '../../support/http-get.js';
import {
  MASK_PLAIN_ANSWER,
  MASK_TLS_BODY,
  type MaskServer,
  maskReceived,
} from '../../support/mask-server.js';
import { startMaskedProxy, stopMaskedProxy } from '../../support/masked-proxy.js';
import { Obfs2Client } from '../../support/obfs2-client.js';
import { probe } from '../../support/probe.js';
import { freePort, type ProxyProcess, startProxy } from '../../support/proxy-process.js';
import { type StandinDc, startStandinDc } from '../../support/standin-dc.js';

const ALICE = '00112233445566778899aabbccddeeff';
const KEY = Buffer.from(ALICE, 'hex');
const DOMAIN_HEX = Buffer.from('example.com').toString('hex');

/** A packet the stand-in DC echoes (not an unencrypted auth message). */
function payload(size: number): Buffer {
  const p = randomBytes(size);
  p.writeUInt32LE(0x01020304, 0);
  return p;
}

/** Waits until the mask site has a connection that received exactly `bytes`. */
async function echoes(client: FakeTlsClient | Obfs2Client, sizes: readonly number[]): Promise<void> {
  for (const size of sizes) {
    const p = payload(size);
    client.send(p);
    const back = await client.receive(10_000);
    expect(back.payload.equals(p), `${size} bytes echoed`).to.equal(true);
  }
}

describe('fake TLS (ee) with masking: clients get through, probers see the mask site', function () {
  this.timeout(60_000);
  let dc: StandinDc;
  let mask: MaskServer;
  let proxy: ProxyProcess;

  before(async () => {
    ({ dc, mask, proxy } = await startMaskedProxy({
      SECRET: ALICE,
      FAKE_TLS_DOMAIN: 'example.com,www.example.com',
      WORKERS: '2',
      HANDSHAKE_TIMEOUT: '2',
    }));
  });
  after(() => stopMaskedProxy({ proxy, mask, dc }));

  it('prints only ee links, with the first domain after the secret', () => {
    const out = proxy.output();
    expect(out).to.contain(`tg://proxy?server=127.0.0.1&port=${proxy.port}&secret=ee${ALICE}${DOMAIN_HEX}`);
    expect(out).to.not.contain(`secret=dd${ALICE}`);
    expect(out).to.not.match(new RegExp(`secret=${ALICE}(\\s|$)`));
  });

  for (const shape of ['classic', 'modern'] as const) {
    it(`an ee client with a ${shape} hello gets its packets echoed exactly, large and small`, async () => {
      const client = await FakeTlsClient.connect({
        port: proxy.port,
        secret: KEY,
        domain: 'example.com',
        shape,
      });
      try {
        await echoes(client, [4, 1000, 16 * 1024, 200 * 1024]);
      } finally {
        await client.close();
      }
    });
  }

  it('a hello without SNI, and one naming the second domain, are accepted', async () => {
    for (const domain of [undefined, 'www.example.com']) {
      const client = await FakeTlsClient.connect({ port: proxy.port, secret: KEY, domain });
      await echoes(client, [64]);
      await client.close();
    }
  });

  it('a hello split into three TLS records and sent in five TCP segments gets through', async () => {
    const client = await FakeTlsClient.connect({
      port: proxy.port,
      secret: KEY,
      domain: 'example.com',
      helloRecords: [100, 300],
      helloSegments: [3, 7, 200, 500],
    });
    await echoes(client, [256]);
    await client.close();
  });

  it('refuses the unpadded intermediate transport inside TLS when classic mode is off', async () => {
    const before = dc.stats.connections;
    const client = await FakeTlsClient.connect({
      port: proxy.port,
      secret: KEY,
      domain: 'example.com',
      transport: 'intermediate',
    });
    client.send(payload(16));
    await client.waitForClose(6_000);
    expect(dc.stats.connections).to.equal(before);
  });

  it('a browser-like TLS client gets the mask site over TLS, its certificate included', async () => {
    const answer = await new Promise<{ body: string; cert: string }>((resolve, reject) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: proxy.port,
        servername: 'example.com',
        rejectUnauthorized: false,
      });
      let body = '';
      socket.on('secureConnect', () => {
        socket.write('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n');
      });
      socket.on('data', (d: Buffer) => {
        body += d.toString();
        if (body.includes(MASK_TLS_BODY)) {
          const cert = socket.getPeerX509Certificate()?.toString() ?? '';
          socket.destroy();
          resolve({ body, cert });
        }
      });
      socket.on('error', reject);
      setTimeout(() => reject(new Error(`no answer; got ${JSON.stringify(body)}`)), 5_000);
    });
    expect(answer.body).to.contain('Server: mask-site');
    expect(answer.cert.replace(/\s/g, '')).to.equal(mask.certificate.replace(/\s/g, ''));
  });

  it('random bytes reach the mask site unchanged and the prober reads its answer', async () => {
    const since = mask.connections.length;
    const bytes = randomBytes(300);
    bytes[0] = 0x01;
    const result = await probe(proxy.port, bytes, { until: 'mask-site' });
    expect(result.received.toString()).to.equal(MASK_PLAIN_ANSWER);
    await maskReceived(mask, bytes, since);
  });

  it('a replayed hello goes to the mask site byte for byte and never reaches a DC', async () => {
    const client = await FakeTlsClient.connect({ port: proxy.port, secret: KEY, domain: 'example.com' });
    await echoes(client, [32]);
    await client.close();
    const dcBefore = dc.stats.connections;
    const since = mask.connections.length;
    // Replays land on either worker: the cache lives in the primary.
    for (let i = 0; i < 4; i++) {
      const result = await probe(proxy.port, client.hello, { timeoutMs: 3_000 });
      // The real TLS server's answer (a handshake or an alert record), not the proxy's.
      expect(result.received[0], 'a real TLS server answers').to.be.oneOf([0x15, 0x16]);
    }
    await maskReceived(mask, client.hello, since);
    expect(mask.connections.slice(since).filter((c) => c.received.equals(client.hello))).to.have.length(4);
    expect(dc.stats.connections).to.equal(dcBefore);
  });

  const badHellos: [string, () => Buffer][] = [
    [
      'names an SNI outside FAKE_TLS_DOMAIN',
      () =>
        buildClientHello({ secret: KEY, domain: 'other.org', now: Date.now() / 1000, random: randomBytes })
          .hello,
    ],
    [
      'is made with another secret',
      () =>
        buildClientHello({
          secret: randomBytes(16),
          domain: 'example.com',
          now: Date.now() / 1000,
          random: randomBytes,
        }).hello,
    ],
    [
      'comes from a clock 20 minutes behind',
      () =>
        buildClientHello({
          secret: KEY,
          domain: 'example.com',
          now: Date.now() / 1000 - 1200,
          random: randomBytes,
        }).hello,
    ],
  ];
  for (const [what, make] of badHellos) {
    it(`a hello that ${what} is masked`, async () => {
      const since = mask.connections.length;
      const hello = make();
      const result = await probe(proxy.port, hello, { until: '\u0016\u0003\u0003', timeoutMs: 3_000 });
      expect(result.received[0]).to.equal(0x16);
      await maskReceived(mask, hello, since);
    });
  }

  it('a plain obfuscated2 client is masked when only tls is enabled', async () => {
    const since = mask.connections.length;
    const client = await Obfs2Client.connect({ port: proxy.port, secret: `dd${ALICE}` });
    await eventually(async () =>
      mask.connections.slice(since).some((c) => c.received.subarray(0, 64).equals(client.header))
        ? true
        : undefined,
    );
    await client.close();
  });

  it('a prober that sends a request and shuts down its side still gets the mask answer', async () => {
    const result = await probe(proxy.port, Buffer.from('GET / HTTP/1.0\r\n\r\n'), {
      end: true,
      timeoutMs: 3_000,
    });
    expect(result.received.toString()).to.equal(MASK_PLAIN_ANSWER);
  });

  it('counts fake-TLS handshakes, masked connections and failure reasons in /metrics', async () => {
    const text = await eventually(async () => {
      const t = await metrics(proxy);
      return (sample(t, 'mtproxy_masked_connections_total') ?? 0) >= 11 ? t : undefined;
    });
    expect(sample(text, 'mtproxy_fake_tls_handshakes_total')).to.be.at.least(6);
    for (const reason of ['tls-bad-mac', 'tls-bad-sni', 'tls-clock-skew', 'replay', 'not-tls']) {
      expect(
        sample(text, `mtproxy_handshakes_total{transport="unknown",result="${reason}"}`),
        reason,
      ).to.be.at.least(1);
    }
    expect(sample(text, 'mtproxy_worker_restarts_total')).to.equal(0);
  });
});

describe('fake TLS next to the classic modes, with masking off', function () {
  this.timeout(60_000);
  let dc: StandinDc;
  let proxy: ProxyProcess;

  before(async () => {
    dc = await startStandinDc();
    proxy = await startProxy({
      env: {
        SECRET: ALICE,
        FAKE_TLS_DOMAIN: 'example.com',
        MODES: 'classic,secure,tls',
        MASK: 'off',
        DC_ADDRS: `2=127.0.0.1:${dc.port}`,
        HANDSHAKE_TIMEOUT: '2',
      },
    });
  });
  after(async () => {
    await proxy?.stop();
    await dc?.stop();
  });

  it('prints ee, dd and plain links', () => {
    const out = proxy.output();
    expect(out).to.contain(`secret=ee${ALICE}${DOMAIN_HEX}`);
    expect(out).to.contain(`secret=dd${ALICE}`);
    expect(out).to.match(new RegExp(`secret=${ALICE}(\\s|$)`, 'm'));
  });

  it('accepts intermediate inside TLS (classic is on) and dd outside it', async () => {
    const tls = await FakeTlsClient.connect({
      port: proxy.port,
      secret: KEY,
      domain: 'example.com',
      transport: 'intermediate',
    });
    await echoes(tls, [100, 20_000]);
    await tls.close();
    const dd = await Obfs2Client.connect({ port: proxy.port, secret: `dd${ALICE}` });
    await echoes(dd, [100]);
    await dd.close();
  });

  it('holds a prober that sends random bytes, answers nothing, and closes after a random delay', async () => {
    const results = await Promise.all(
      [0, 1, 2].map(() => probe(proxy.port, randomBytes(200), { timeoutMs: 6_000 })),
    );
    for (const result of results) {
      expect(result.closedByPeer).to.equal(true);
      expect(result.received.length).to.equal(0);
      // Held for 0.5..1.5 times HANDSHAKE_TIMEOUT, never reset at once.
      expect(result.elapsedMs).to.be.within(900, 3_300);
    }
  });
});

describe('a mask target that is the proxy itself', function () {
  this.timeout(30_000);

  it('is refused at start with a clear error, and failed connections are held instead of looping', async () => {
    const port = await freePort();
    const proxy = await startProxy({
      port,
      env: {
        FAKE_TLS_DOMAIN: 'example.com',
        MASK_HOST: '127.0.0.1',
        MASK_PORT: String(port),
        HANDSHAKE_TIMEOUT: '1',
      },
    });
    try {
      expect(proxy.output()).to.contain('point at this proxy itself');
      const result = await probe(port, randomBytes(100), { timeoutMs: 4_000 });
      expect(result.closedByPeer).to.equal(true);
      expect(result.received.length).to.equal(0);
      // Counters reach the primary every second: wait for the probe, then make sure nothing followed.
      await eventually(async () =>
        (sample(await metrics(proxy), 'mtproxy_connections_opened_total') ?? 0) >= 1 ? true : undefined,
      );
      await new Promise((r) => setTimeout(r, 1_200));
      const text = await metrics(proxy);
      expect(sample(text, 'mtproxy_connections_opened_total'), 'no connection to ourselves').to.equal(1);
    } finally {
      await proxy.stop();
    }
  });
});
