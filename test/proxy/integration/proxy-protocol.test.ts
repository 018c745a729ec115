import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { FakeTlsClient } from '../../support/fake-tls-socket-client.js';
import { eventually, metrics, sample } from '../../support/http-get.js';
import { type MaskServer, maskReceived } from '../../support/mask-server.js';
import { startMaskedProxy, stopMaskedProxy } from '../../support/masked-proxy.js';
import { Obfs2Client } from '../../support/obfs2-client.js';
import { probe } from '../../support/probe.js';
import { type ProxyProcess, startProxy } from '../../support/proxy-process.js';
import { formatProxyHeaderV1, formatProxyHeaderV2 } from '../../support/proxy-protocol-sender.js';
import { type StandinDc, startStandinDc } from '../../support/standin-dc.js';

const ALICE = '00112233445566778899aabbccddeeff';
const KEY = Buffer.from(ALICE, 'hex');
const LB_SIDE = { address: '10.0.0.5', port: 443 };

function v1From(address: string, port = 40_000): Buffer {
  return formatProxyHeaderV1({ address, port }, LB_SIDE);
}

async function echo(client: Obfs2Client | FakeTlsClient): Promise<void> {
  const p = randomBytes(64);
  p.writeUInt32LE(0x01020304, 0);
  client.send(p);
  expect((await client.receive()).payload.equals(p)).to.equal(true);
}

describe('behind a load balancer speaking PROXY protocol v1, with one connection per client address', function () {
  this.timeout(60_000);
  let dc: StandinDc;
  let proxy: ProxyProcess;

  before(async () => {
    dc = await startStandinDc();
    proxy = await startProxy({
      env: {
        SECRET: ALICE,
        DC_ADDRS: `2=127.0.0.1:${dc.port}`,
        PROXY_PROTOCOL: 'v1',
        MAX_CONNECTIONS_PER_IP: '1',
        HANDSHAKE_TIMEOUT: '1',
        LOG_LEVEL: 'debug',
      },
    });
  });
  after(async () => {
    await proxy?.stop();
    await dc?.stop();
  });

  it('limits by the address in the header, not by the balancer address all connections come from', async () => {
    const first = await Obfs2Client.connect({
      port: proxy.port,
      secret: `dd${ALICE}`,
      preamble: v1From('203.0.113.7'),
    });
    try {
      await echo(first);
      const same = await probe(proxy.port, Buffer.concat([v1From('203.0.113.7', 40_001), randomBytes(64)]), {
        timeoutMs: 3_000,
      });
      expect(same.closedByPeer, 'a second connection from 203.0.113.7 is refused').to.equal(true);
      expect(same.elapsedMs).to.be.below(500);
      const other = await Obfs2Client.connect({
        port: proxy.port,
        secret: `dd${ALICE}`,
        preamble: v1From('203.0.113.8'),
      });
      await echo(other);
      await other.close();
    } finally {
      await first.close();
    }
    const again = await eventually(async () => {
      const c = await Obfs2Client.connect({
        port: proxy.port,
        secret: `dd${ALICE}`,
        preamble: v1From('203.0.113.7'),
      });
      try {
        await echo(c);
        return true;
      } finally {
        await c.close();
      }
    }, 5_000);
    expect(again).to.equal(true);
  });

  it('logs a failed handshake with the client address from the header', async () => {
    await probe(proxy.port, Buffer.concat([v1From('198.51.100.23', 5555), randomBytes(64)]), {
      timeoutMs: 3_000,
    });
    await proxy.waitForOutput(
      /handshake failed.*198\.51\.100\.23:5555|198\.51\.100\.23:5555.*handshake failed/,
      5_000,
    );
  });

  it('closes a connection that comes without the header, at once, and counts every refusal by reason', async () => {
    const direct = await probe(proxy.port, randomBytes(64), { timeoutMs: 3_000 });
    expect(direct.closedByPeer).to.equal(true);
    expect(direct.elapsedMs).to.be.below(500);
    const text = await eventually(async () => {
      const t = await metrics(proxy);
      return (sample(t, 'mtproxy_connections_refused_total{reason="bad_proxy_header"}') ?? 0) >= 1
        ? t
        : undefined;
    });
    expect(sample(text, 'mtproxy_connections_refused_total{reason="per_ip_limit"}')).to.be.at.least(1);
    expect(sample(text, 'mtproxy_connections_refused_total{reason="max_connections"}')).to.equal(0);
  });
});

describe('PROXY_PROTOCOL=auto with fake TLS and masking', function () {
  this.timeout(60_000);
  let dc: StandinDc;
  let mask: MaskServer;
  let proxy: ProxyProcess;

  before(async () => {
    ({ dc, mask, proxy } = await startMaskedProxy({
      SECRET: ALICE,
      FAKE_TLS_DOMAIN: 'example.com',
      MODES: 'secure,tls',
      PROXY_PROTOCOL: 'auto',
      HANDSHAKE_TIMEOUT: '2',
    }));
  });
  after(() => stopMaskedProxy({ proxy, mask, dc }));

  it('an ee client behind a v2 header, and a dd client with no header, both get through', async () => {
    const v2 = formatProxyHeaderV2(
      { address: '2001:db8::7', port: 1234 },
      { address: '2001:db8::1', port: 443 },
    );
    const tls = await FakeTlsClient.connect({
      port: proxy.port,
      secret: KEY,
      domain: 'example.com',
      preamble: v2,
    });
    await echo(tls);
    await tls.close();
    const dd = await Obfs2Client.connect({ port: proxy.port, secret: `dd${ALICE}` });
    await echo(dd);
    await dd.close();
  });

  it('the mask site receives what the prober sent, without the balancer header', async () => {
    const since = mask.connections.length;
    const bytes = randomBytes(120);
    bytes[0] = 0x02;
    await probe(proxy.port, Buffer.concat([v1From('203.0.113.50'), bytes]), {
      until: 'mask-site',
      timeoutMs: 3_000,
    });
    await maskReceived(mask, bytes, since);
  });

  it('a malformed v2 header is closed at once and never reaches the mask site', async () => {
    const since = mask.connections.length;
    const bad = formatProxyHeaderV2({ address: '192.0.2.1', port: 1 }, { address: '192.0.2.2', port: 2 });
    bad[12] = 0x31; // version 3
    const result = await probe(proxy.port, Buffer.concat([bad, randomBytes(64)]), { timeoutMs: 3_000 });
    expect(result.closedByPeer).to.equal(true);
    expect(result.elapsedMs).to.be.below(500);
    expect(mask.connections.length).to.equal(since);
  });
});
