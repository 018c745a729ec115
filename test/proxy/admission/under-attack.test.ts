// The pure parts of the defences against a prober and a flooder (issue 13): the cheap per-secret
// trial, the per-source throttle, the bound on unidentified handshakes, the descriptor budget, the
// last resort, bounded metric labels, PROXY v2 IPv4-mapped sources and private files.

import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  HandshakeThrottle,
  sourceKeys,
  throttleOptions,
  UnidentifiedHandshakes,
} from '../../../proxy/src/admission/handshake-throttle.js';
import { keepPrivate } from '../../../proxy/src/config/private-file.js';
import { buildClientHello } from '../../../proxy/src/fake-tls/client.js';
import { validateClientHello } from '../../../proxy/src/fake-tls/codec.js';
import { fitConnections, softDescriptorLimit } from '../../../proxy/src/process/fd-limit.js';
import { lastResort } from '../../../proxy/src/process/last-resort.js';
import { parseClientHeader } from '../../../proxy/src/protocol/obfuscated2.js';
import { parseProxyHeader } from '../../../proxy/src/protocol/proxy-protocol.js';
import { dcLabel } from '../../../proxy/src/telemetry/counters.js';
import { createClientHeader } from '../../support/obfuscated2-client-header.js';
import { formatProxyHeaderV2 } from '../../support/proxy-protocol-sender.js';

describe('under attack: the cheap per-secret trial', () => {
  const secrets = Array.from({ length: 144 }, () => randomBytes(16));

  it('finds the secret of a real header among 144, with the keys and DC it carries', () => {
    for (const index of [0, 77, 143]) {
      const client = createClientHeader(randomBytes, secrets[index]!, 'padded', -4);
      const parsed = parseClientHeader(client.wire, secrets);
      expect(parsed?.secretIndex).to.equal(index);
      expect(parsed?.dc).to.equal(-4);
      expect(parsed?.transport).to.equal('padded');
      // The stream continues where the header left off, both ways.
      const payload = randomBytes(50);
      expect(parsed!.decryptor.update(client.encryptor.update(payload)).equals(payload)).to.equal(true);
    }
  });

  it('tries the remembered secret first, and still finds another one when it is wrong', () => {
    const client = createClientHeader(randomBytes, secrets[5]!, 'intermediate', 2);
    expect(parseClientHeader(client.wire, secrets, 5)?.secretIndex).to.equal(5);
    expect(parseClientHeader(client.wire, secrets, 100)?.secretIndex).to.equal(5);
    expect(parseClientHeader(client.wire, secrets, 9999)?.secretIndex).to.equal(5);
  });

  it('a fake-TLS hello is matched whichever secret is tried first', () => {
    const now = Math.floor(Date.now() / 1000);
    const { hello } = buildClientHello({
      secret: secrets[7]!,
      domain: 'example.com',
      now,
      random: randomBytes,
    });
    for (const tryFirst of [7, 100, undefined]) {
      const v = validateClientHello(hello, { secrets, domains: [], now: () => now, tryFirst });
      expect(v.ok && v.secretIndex).to.equal(7);
    }
  });

  it('opens no garbage header', () => {
    let opened = 0;
    for (let i = 0; i < 50; i++) if (parseClientHeader(randomBytes(64), secrets) !== undefined) opened++;
    expect(opened).to.equal(0);
  });
});

describe('under attack: the throttle of failed handshakes per source', () => {
  let now = 0;
  const throttle = (): HandshakeThrottle => new HandshakeThrottle({ ...throttleOptions(10), now: () => now });

  beforeEach(() => {
    now = 1_000_000;
  });

  it('counts IPv4 per /32 and /24, IPv6 per /64 and /48, IPv4-mapped as IPv4', () => {
    expect(sourceKeys('198.51.100.7')).to.deep.equal({ host: '198.51.100.7', network: '198.51.100.0/24' });
    expect(sourceKeys('::ffff:198.51.100.7')).to.deep.equal(sourceKeys('198.51.100.7'));
    expect(sourceKeys('2001:db8:1:2::1').host).to.equal(sourceKeys('2001:db8:1:2:ffff::9').host);
    expect(sourceKeys('2001:db8:1:2::1').host).to.not.equal(sourceKeys('2001:db8:1:3::1').host);
    expect(sourceKeys('2001:db8:1:2::1').network).to.equal(sourceKeys('2001:db8:1:ffff::1').network);
  });

  it('a host gets 40 failed trials at once, then only its remembered secret; the budget comes back', () => {
    const t = throttle();
    for (let i = 0; i < 40; i++) {
      expect(t.plan('203.0.113.5').kind).to.equal('full');
      t.failed('203.0.113.5');
    }
    expect(t.plan('203.0.113.5')).to.deep.equal({ kind: 'remembered-only', first: undefined });
    // Another host of the same /24 still has budget (the /24 allows 160 at once).
    expect(t.plan('203.0.113.6').kind).to.equal('full');
    now += 200;
    expect(t.plan('203.0.113.5').kind).to.equal('full');
  });

  it('a /24 that floods from many hosts is throttled, but not a host of it that authenticated before', () => {
    const t = throttle();
    t.matched('203.0.113.200', 3);
    for (let h = 1; h <= 8; h++) for (let i = 0; i < 30; i++) t.failed(`203.0.113.${h}`);
    expect(t.plan('203.0.113.77').kind).to.equal('remembered-only');
    expect(t.plan('203.0.113.200')).to.deep.equal({ kind: 'full', first: 3 });
    expect(t.plan('198.51.100.1').kind).to.equal('full');
  });

  it('remembers a bounded number of sources', () => {
    const t = new HandshakeThrottle({ ...throttleOptions(10, 100), now: () => now });
    for (let i = 0; i < 1000; i++) t.failed(`10.${i >> 8}.${i & 255}.1`);
    expect(t.trackedHosts).to.equal(100);
  });

  it('past the bound on unidentified handshakes the oldest one is told to give up', () => {
    const u = new UnidentifiedHandshakes(3);
    const evicted: number[] = [];
    const leave = [0, 1, 2].map((i) => u.enter(() => evicted.push(i)));
    leave[1]!();
    u.enter(() => evicted.push(3));
    expect(evicted).to.deep.equal([]);
    u.enter(() => evicted.push(4));
    expect(evicted).to.deep.equal([0]);
    expect(u.size).to.equal(3);
    expect(u.evicted).to.equal(1);
  });
});

describe('under attack: robustness of a worker', () => {
  const limits = (soft: string) =>
    `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                 1048576              files\n`;

  it('reads the soft descriptor limit and fits MAX_CONNECTIONS into it, saying what it did', () => {
    expect(softDescriptorLimit(limits('1024'))).to.equal(1024);
    expect(softDescriptorLimit(limits('unlimited'))).to.equal(undefined);
    const fitted = fitConnections(60_000, 1024);
    expect(fitted.maxConnections).to.equal(480);
    expect(fitted.lowered).to.match(
      /MAX_CONNECTIONS=60000 .* soft limit \(ulimit -n\) is 1024; each worker accepts at most 480/,
    );
    expect(fitConnections(1000, 1_048_576)).to.deep.equal({ maxConnections: 1000 });
  });

  it('the last resort counts every error, logs at most once per interval, and keeps going', () => {
    let now = 0;
    const logged: Record<string, unknown>[] = [];
    let counted = 0;
    const handler = lastResort({
      log: (_m, f) => logged.push(f),
      count: () => counted++,
      intervalMs: 1000,
      now: () => now,
    });
    const emfile = Object.assign(new Error('EMFILE: too many open files, uv_resident_set_memory'), {
      code: 'EMFILE',
    });
    for (let i = 0; i < 5; i++) handler(emfile);
    now += 1500;
    handler(new Error('again'));
    expect(counted).to.equal(6);
    expect(logged.map((f) => f.code ?? f.error)).to.deep.equal(['EMFILE', 'again']);
    expect(logged[1]!.suppressedSinceLast).to.equal(4);
  });

  it('a DC id from a client becomes a metric label only when Telegram uses it', () => {
    expect([2, -2, 10002, 203].map(dcLabel)).to.deep.equal(['2', '-2', '10002', '203']);
    expect([0, 6, 999, -32768, 32767].map(dcLabel)).to.deep.equal([
      'other',
      'other',
      'other',
      'other',
      'other',
    ]);
  });

  it('a PROXY v2 header with an IPv4-mapped IPv6 source gives the plain IPv4 client address', () => {
    const header = formatProxyHeaderV2(
      // 198.51.100.7 and 203.0.113.1 as a dual-stack balancer writes them.
      { address: '::ffff:c633:6407', port: 40000 },
      { address: '::ffff:cb00:7101', port: 443 },
    );
    const parsed = parseProxyHeader(header, 'v2');
    expect(parsed.kind === 'header' && parsed.source?.address).to.equal('198.51.100.7');
    const real6 = parseProxyHeader(
      formatProxyHeaderV2({ address: '2001:db8::7', port: 1 }, { address: '2001:db8::1', port: 443 }),
      'v2',
    );
    expect(real6.kind === 'header' && real6.source?.address).to.equal('2001:db8::7');
  });

  it('a file that existed with loose permissions is made 0600', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mtkube-private-'));
    try {
      const path = join(dir, 'secret');
      writeFileSync(path, 'x');
      chmodSync(path, 0o644);
      expect(await keepPrivate(path)).to.equal('tightened');
      expect(statSync(path).mode & 0o777).to.equal(0o600);
      expect(await keepPrivate(path)).to.equal('ok');
      expect(await keepPrivate(join(dir, 'none'))).to.equal('missing');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
