// Middle-proxy mode end to end (docs/protocol.md §6): the real proxy process relays through
// stand-in middle proxies on 127.0.0.1. Telegram's two files come from the test: the proxy secret
// from a local file (PROXY_SECRET_URL may name one), the proxy config from a local HTTP server the
// test can change or break (PROXY_CONFIG_URL). EXTERNAL_IP is 127.0.0.1, the address the stand-ins
// see, so both ends derive the same keys.
//
// Every proxy also gets DC_ADDRS pointing at a closed loopback port: a proxy that wrongly ran in
// direct mode would fail here instead of reaching Telegram.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ConfigServer } from '../../support/config-server.js';
import { DcBehindMiddleProxy } from '../../support/dc-behind-middle-proxy.js';
import { eventually, httpGet, metrics, stats } from '../../support/http-get.js';
import { gramjsHandshakeViaMiddleProxy } from '../../support/middle-telegram-client.js';
import { Obfs2Client } from '../../support/obfs2-client.js';
import { Obfs2StreamClient } from '../../support/obfs2-stream-client.js';
import { freePort, type ProxyProcess, startProxy } from '../../support/proxy-process.js';
import { startStandinDc, TL } from '../../support/standin-dc.js';
import { type RecordedRequest, StandinMiddleProxy } from '../../support/standin-middle-proxy.js';
import { loadVectors } from '../../support/vectors.js';

const SECRET = '00112233445566778899aabbccddeeff';
const TAG = 'a0b1c2d3e4f5061728394a5b6c7d8e9f';

interface Constants {
  readonly proxy_req_flags: Record<string, string>;
}
/** RPC_PROXY_REQ flag bits (§6.8) as the vectors list them. */
const FLAG = Object.fromEntries(
  Object.entries(loadVectors<Constants>('constants.json').proxy_req_flags).map(([name, value]) => [
    name,
    Number(value),
  ]),
) as Record<
  'NOT_ENCRYPTED' | 'HAS_AD_TAG' | 'MAGIC_EXT_CONN' | 'EXTMODE2' | 'INTERMEDIATE' | 'ABRIDGED' | 'QUICKACK',
  number
>;

type TransportName = 'abridged' | 'intermediate' | 'padded';

/**
 * The flags the official proxy sends for a client with a tag (§6.8). Padded clients get the
 * intermediate bit only: the official proxy does not forward the pad flag.
 */
function expectedFlags(
  transport: TransportName,
  packet: { unencrypted?: boolean; quickAck?: boolean } = {},
): number {
  return (
    ((transport === 'abridged' ? FLAG.ABRIDGED : FLAG.INTERMEDIATE) |
      FLAG.MAGIC_EXT_CONN |
      FLAG.EXTMODE2 |
      FLAG.HAS_AD_TAG |
      (packet.unencrypted ? FLAG.NOT_ENCRYPTED : 0) |
      (packet.quickAck ? FLAG.QUICKACK : 0)) >>>
    0
  );
}

/** A packet that passes the official checks as an encrypted one (§3.5): non-zero auth_key_id, ≥ 56 bytes. */
function encryptedPacket(size: number): Buffer {
  const packet = randomBytes(size);
  packet[0]! |= 1;
  return packet;
}

function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

/** Sum of the samples of `name` whose labels include `labels` (other labels may be present). */
function metricTotal(metrics: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const series = line.slice(0, line.lastIndexOf(' '));
    if (Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`))) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

async function readyz(proxy: ProxyProcess): Promise<number> {
  return (await httpGet(`http://127.0.0.1:${proxy.metricsPort}/readyz`)).status;
}

/** The proxy's JSON log lines so far. */
function logLines(proxy: ProxyProcess): Record<string, string>[] {
  return proxy
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, string>);
}

async function waitUntilReady(proxy: ProxyProcess, timeoutMs = 15_000): Promise<void> {
  await eventually(async () => ((await readyz(proxy)) === 200 ? true : undefined), timeoutMs, 100);
}

/** DC_ADDRS sending every DC to a closed loopback port. */
async function deadDcAddrs(): Promise<string> {
  const port = await freePort();
  return [1, 2, 3, 4, 5].flatMap((dc) => [`${dc}=127.0.0.1:${port}`, `-${dc}=127.0.0.1:${port}`]).join(',');
}

/** A temporary directory holding the stand-in's proxy secret as Telegram's getProxySecret file. */
class SecretFile {
  readonly dir = mkdtempSync(join(tmpdir(), 'mtkube-middle-'));
  readonly path = join(this.dir, 'proxy-secret');

  constructor(secret: Buffer) {
    writeFileSync(this.path, secret);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

interface MiddleEnvOptions {
  readonly secretFile: string;
  readonly configUrl: string;
  readonly extra?: Record<string, string>;
}

async function middleEnv(o: MiddleEnvOptions): Promise<Record<string, string>> {
  return {
    SECRET,
    TAG,
    PROXY_SECRET_URL: o.secretFile,
    PROXY_CONFIG_URL: o.configUrl,
    DC_ADDRS: await deadDcAddrs(),
    ...o.extra,
  };
}

/** The requests a client sent (by its port), among those recorded since `since`. */
function requestsFrom(middle: StandinMiddleProxy, clientPort: number, since = 0): RecordedRequest[] {
  return middle.requests.slice(since).filter((r) => r.client.port === clientPort);
}

/** Sends one packet and waits for its echo; resolves with the stand-in's record of it. */
async function echoThrough(
  client: Obfs2StreamClient,
  middles: readonly StandinMiddleProxy[],
): Promise<{ middle: StandinMiddleProxy; request: RecordedRequest }> {
  const packet = encryptedPacket(64);
  client.send(packet);
  expect((await client.receive()).equals(packet)).to.equal(true);
  for (const middle of middles) {
    const request = middle.requests.findLast(
      (r) => r.client.port === client.localPort && r.packet.equals(packet),
    );
    if (request) return { middle, request };
  }
  return expect.fail('no stand-in middle proxy recorded the packet');
}

describe('middle mode: real clients through the proxy and a stand-in middle proxy, with the tag', function () {
  this.timeout(60_000);
  const dc = new DcBehindMiddleProxy();
  let middle: StandinMiddleProxy;
  let secretFile: SecretFile;
  let configServer: ConfigServer;
  let proxy: ProxyProcess;
  let startedAt: number;

  before(async () => {
    middle = await StandinMiddleProxy.start({ answer: dc.answer });
    secretFile = new SecretFile(middle.secret);
    configServer = await ConfigServer.start(middle.configText());
    startedAt = Math.floor(Date.now() / 1000);
    // MODE is not set: a TAG selects middle mode.
    proxy = await startProxy({
      env: await middleEnv({ secretFile: secretFile.path, configUrl: configServer.url }),
    });
    await waitUntilReady(proxy);
  });
  after(async () => {
    await proxy?.stop();
    await middle?.close();
    await configServer?.close();
    secretFile?.remove();
  });

  it('gramjs gets through: req_pq_multi, then req_DH_params with our nonces, each carrying the tag and the client address', async () => {
    const { dhRequest, localPorts } = await gramjsHandshakeViaMiddleProxy({
      dc,
      proxyPort: proxy.port,
      secret: SECRET,
      dcId: 2,
    });
    const { client, connId, connection } = dhRequest.request;
    expect(localPorts).to.include(client.port);

    const exchange = dc.messages.filter(
      (m) => m.request.connId === connId && m.request.connection === connection,
    );
    expect(exchange.map((m) => m.constructorId)).to.deep.equal([TL.reqPqMulti, TL.reqDhParams]);

    const requests = middle.requests.filter((r) => r.connId === connId && r.connection === connection);
    expect(requests).to.have.length(2);
    for (const r of requests) {
      // gramjs speaks abridged; both packets are unencrypted key-exchange messages.
      expect(r.flags.toString(16)).to.equal(expectedFlags('abridged', { unencrypted: true }).toString(16));
      expect(r.adTag?.toString('hex')).to.equal(TAG);
      expect(r.client).to.deep.equal({ ip: '127.0.0.1', port: client.port });
      // The official proxy reports the address clients dialled, NAT-translated (EXTERNAL_IP).
      expect(r.proxy).to.deep.equal({ ip: '127.0.0.1', port: proxy.port });
    }
  });

  const clients: { transport: TransportName; secret: string }[] = [
    { transport: 'abridged', secret: SECRET },
    { transport: 'intermediate', secret: SECRET },
    { transport: 'padded', secret: `dd${SECRET}` },
  ];
  for (const { transport, secret } of clients) {
    const connect = (): Promise<Obfs2StreamClient> =>
      Obfs2StreamClient.connect({ port: proxy.port, secret, transport, dc: 2 });

    it(`${transport}: an encrypted packet comes back byte for byte; the middle proxy saw the client, the tag and the transport`, async () => {
      const client = await connect();
      try {
        const since = middle.requests.length;
        for (const size of [64, 1024, 64 * 1024]) {
          const packet = encryptedPacket(size);
          client.send(packet);
          expect((await client.receive()).equals(packet), `${size} bytes`).to.equal(true);
        }
        const requests = requestsFrom(middle, client.localPort, since);
        expect(requests.map((r) => r.packet.length)).to.deep.equal([64, 1024, 64 * 1024]);
        expect(new Set(requests.map((r) => r.connId)).size).to.equal(1);
        for (const r of requests) {
          expect(r.flags.toString(16)).to.equal(expectedFlags(transport).toString(16));
          expect(r.adTag?.toString('hex')).to.equal(TAG);
          expect(r.client).to.deep.equal({ ip: '127.0.0.1', port: client.localPort });
        }
      } finally {
        await client.close();
      }
    });

    it(`${transport}: a quick ack from the middle proxy reaches the client in the ${transport} form`, async () => {
      const client = await connect();
      try {
        const since = middle.requests.length;
        const packet = encryptedPacket(128);
        client.send(packet, true);
        expect((await client.receive()).equals(packet)).to.equal(true);
        const [request] = requestsFrom(middle, client.localPort, since);
        expect(request?.quickAck).to.equal(true);
        expect(request!.flags.toString(16)).to.equal(
          expectedFlags(transport, { quickAck: true }).toString(16),
        );

        // Real tokens have the top bit set (that is how the client tells them from a length).
        const token = randomBytes(4);
        token[3]! |= 0x80;
        middle.sendSimpleAck(request!.connId, token);
        const ack = await client.next();
        // §3.4: abridged gets the token reversed, the others the bytes as they are.
        const expected = transport === 'abridged' ? Buffer.from(token).reverse() : token;
        expect(ack).to.deep.equal({ kind: 'quick-ack', bytes: expected });

        // The stream is still in step afterwards.
        const after = encryptedPacket(64);
        client.send(after);
        expect((await client.receive()).equals(after)).to.equal(true);
      } finally {
        await client.close();
      }
    });

    it(`${transport}: RPC_CLOSE_EXT from the middle proxy closes the client`, async () => {
      const client = await connect();
      try {
        const { request } = await echoThrough(client, [middle]);
        middle.sendCloseExt(request.connId);
        await client.waitForClose(5000);
      } finally {
        await client.close();
      }
    });

    it(`${transport}: a client that leaves is reported to the middle proxy with RPC_CLOSE_CONN`, async () => {
      const client = await connect();
      const { request } = await echoThrough(client, [middle]);
      expect(middle.closedConnIds).to.not.include(request.connId);
      await client.close();
      await middle.waitFor(() => middle.closedConnIds.includes(request.connId), 5000);
    });
  }

  it('drops packets the official proxy would not forward (§3.5), and the client stays served', async () => {
    const client = await Obfs2StreamClient.connect({
      port: proxy.port,
      secret: SECRET,
      transport: 'intermediate',
    });
    try {
      const droppedBefore = metricTotal(await metrics(proxy), 'mtproxy_middle_proxy_packets_total', {
        kind: 'query',
        result: 'dropped',
      });
      const since = middle.requests.length;
      // Encrypted (non-zero auth_key_id) but shorter than an encrypted message header.
      client.send(encryptedPacket(32));
      // Unencrypted, but not a key-exchange call.
      const notHandshake = Buffer.alloc(40);
      notHandshake.writeUInt32LE(20, 16);
      notHandshake.writeUInt32LE(0x12345678, 20);
      client.send(notHandshake);
      const good = encryptedPacket(64);
      client.send(good);
      expect((await client.receive()).equals(good)).to.equal(true);
      expect(requestsFrom(middle, client.localPort, since).map((r) => r.packet)).to.deep.equal([good]);
      await eventually(async () => {
        const dropped = metricTotal(await metrics(proxy), 'mtproxy_middle_proxy_packets_total', {
          kind: 'query',
          result: 'dropped',
        });
        return dropped >= droppedBefore + 2 ? true : undefined;
      }, 5000);
    } finally {
      await client.close();
    }
  });

  it('/stats, /metrics and /readyz describe middle mode: targets, the config in use, the tag, traffic', async () => {
    const client = await Obfs2StreamClient.connect({ port: proxy.port, secret: SECRET });
    try {
      await echoThrough(client, [middle]);
    } finally {
      await client.close();
    }
    const text = middle.configText();
    // Workers report every second.
    const s = await eventually(async () => {
      const m = await stats(proxy);
      return Number(m.get('tot_forwarded_queries')) > 0 && Number(m.get('tot_forwarded_responses')) > 0
        ? m
        : undefined;
    }, 5000);
    expect(s.get('proxy_mode')).to.equal('2');
    expect(s.get('proxy_tag_set')).to.equal('1');
    // One middle proxy address in the config: one target, and it is connected.
    expect(s.get('ready_targets')).to.equal('1');
    expect(s.get('active_targets')).to.equal('1');
    expect(s.get('total_ready_targets')).to.equal('1');
    expect(s.get('total_declared_targets')).to.equal('1');
    expect(s.get('config_filename')).to.equal(configServer.url);
    expect(s.get('config_md5')).to.equal(md5(text));
    expect(s.get('config_size')).to.equal(String(Buffer.byteLength(text)));
    const loadedAt = Number(s.get('config_loaded_at'));
    expect(loadedAt).to.be.within(startedAt - 1, Math.floor(Date.now() / 1000));

    const m = await metrics(proxy);
    expect(metricTotal(m, 'mtproxy_upstream_targets', { state: 'ready' })).to.equal(1);
    expect(metricTotal(m, 'mtproxy_upstream_targets', { state: 'declared' })).to.equal(1);
    expect(
      metricTotal(m, 'mtproxy_middle_proxy_packets_total', { kind: 'query', result: 'forwarded' }),
    ).to.be.above(0);
    expect(
      metricTotal(m, 'mtproxy_middle_proxy_packets_total', { kind: 'response', result: 'forwarded' }),
    ).to.be.above(0);
    expect(await readyz(proxy)).to.equal(200);
  });
});

describe('middle mode: the config is refreshed without a restart', function () {
  this.timeout(60_000);
  let a: StandinMiddleProxy;
  let b: StandinMiddleProxy;
  let secretFile: SecretFile;
  let configServer: ConfigServer;
  let proxy: ProxyProcess;

  before(async () => {
    a = await StandinMiddleProxy.start();
    // Both stand-ins hold the same proxy secret, as Telegram's middle proxies do.
    b = await StandinMiddleProxy.start({ secret: a.secret });
    secretFile = new SecretFile(a.secret);
    configServer = await ConfigServer.start(a.configText([2, -2]));
    proxy = await startProxy({
      env: await middleEnv({
        secretFile: secretFile.path,
        configUrl: configServer.url,
        extra: { CONFIG_REFRESH_INTERVAL: '1', WORKERS: '2' },
      }),
    });
    await waitUntilReady(proxy);
  });
  after(async () => {
    await proxy?.stop();
    await a?.close();
    await b?.close();
    await configServer?.close();
    secretFile?.remove();
  });

  it('after DC 2 moves from A to B, new connections go to B while one opened before keeps working through A', async () => {
    const early = await Obfs2StreamClient.connect({ port: proxy.port, secret: SECRET, dc: 2 });
    try {
      const first = await echoThrough(early, [a, b]);
      expect(first.middle).to.equal(a);

      const text = b.configText([2, -2]);
      configServer.serve(text);
      await eventually(
        async () => ((await stats(proxy)).get('config_md5') === md5(text) ? true : undefined),
        10_000,
      );

      // The workers get the new list right after the primary; the first new client may still
      // have raced it, so wait for one that lands on B, then every later one must.
      await eventually(
        async () => {
          const probe = await Obfs2StreamClient.connect({ port: proxy.port, secret: SECRET, dc: 2 });
          try {
            return (await echoThrough(probe, [a, b])).middle === b ? true : undefined;
          } finally {
            await probe.close();
          }
        },
        10_000,
        100,
      );
      const later = await Promise.all(
        Array.from({ length: 6 }, () =>
          Obfs2StreamClient.connect({ port: proxy.port, secret: SECRET, dc: 2 }),
        ),
      );
      try {
        for (const client of later) expect((await echoThrough(client, [a, b])).middle).to.equal(b);
      } finally {
        await Promise.all(later.map((c) => c.close()));
      }

      // The early client is still on A, with the same conn id.
      const again = await echoThrough(early, [a, b]);
      expect(again.middle).to.equal(a);
      expect(again.request.connId).to.equal(first.request.connId);
      expect(again.request.connection).to.equal(first.request.connection);
    } finally {
      await early.close();
    }
  });

  it('A, no longer in the config, is let go once its last client has left', async () => {
    // Depends on the previous test having moved DC 2 to B and closed the early client.
    await a.waitFor(() => a.openConnections === 0, 10_000);
    // Every target of the config (B) is ready again. (Both figures are summed over the workers.)
    const s = await stats(proxy);
    expect(Number(s.get('ready_targets'))).to.be.above(0);
    expect(s.get('ready_targets')).to.equal(s.get('active_targets'));
    expect(s.get('config_md5')).to.equal(md5(b.configText([2, -2])));
  });
});

describe('middle mode: a failed fetch keeps the config in use', function () {
  this.timeout(60_000);
  let middle: StandinMiddleProxy;
  let other: StandinMiddleProxy;
  let secretFile: SecretFile;
  let configServer: ConfigServer;
  let proxy: ProxyProcess;
  let goodMd5: string;

  const refreshes = async (result: string): Promise<number> =>
    metricTotal(await metrics(proxy), 'mtproxy_config_refreshes_total', { result });

  /** The proxy still serves, from the same config, through the same middle proxy. */
  async function stillServed(): Promise<void> {
    expect(proxy.child.exitCode).to.equal(null);
    const client = await Obfs2StreamClient.connect({ port: proxy.port, secret: SECRET, dc: 2 });
    try {
      expect((await echoThrough(client, [middle, other])).middle).to.equal(middle);
    } finally {
      await client.close();
    }
    const s = await stats(proxy);
    expect(s.get('config_md5')).to.equal(goodMd5);
    expect(s.get('ready_targets')).to.equal('1');
    expect(await readyz(proxy)).to.equal(200);
  }

  before(async () => {
    middle = await StandinMiddleProxy.start();
    other = await StandinMiddleProxy.start({ secret: middle.secret });
    secretFile = new SecretFile(middle.secret);
    const text = middle.configText();
    goodMd5 = md5(text);
    configServer = await ConfigServer.start(text);
    proxy = await startProxy({
      env: await middleEnv({
        secretFile: secretFile.path,
        configUrl: configServer.url,
        extra: { CONFIG_REFRESH_INTERVAL: '1' },
      }),
    });
    await waitUntilReady(proxy);
  });
  after(async () => {
    await proxy?.stop();
    await middle?.close();
    await other?.close();
    await configServer?.close();
    secretFile?.remove();
  });

  it('HTTP 500 from the config URL: counted as failed, logged, and the last good config stays', async () => {
    const before = await refreshes('failed');
    configServer.fail(500);
    await configServer.waitForRequests(2, 10_000);
    await eventually(async () => ((await refreshes('failed')) >= before + 2 ? true : undefined), 5000);
    const logged = logLines(proxy).find(
      (l) => l.message === 'telegram config fetch failed; keeping previous',
    );
    expect(logged?.error).to.include('HTTP 500');
    await stillServed();
  });

  it('a body that does not parse is rejected as a whole, even when it starts with a valid list', async () => {
    const before = await refreshes('rejected');
    // Valid lines sending DC 2 elsewhere, then a line that is not part of the grammar (§6.2).
    configServer.serve(`${other.configText()}this is not a proxy config;\n`);
    await configServer.waitForRequests(2, 10_000);
    await eventually(async () => ((await refreshes('rejected')) >= before + 2 ? true : undefined), 5000);
    const logged = logLines(proxy).find((l) => l.message === 'telegram config rejected; keeping previous');
    expect(logged?.error).to.include('unknown statement "this"');
    await stillServed();
    expect(other.connectionsAccepted).to.equal(0);
  });
});

describe('middle mode: /readyz follows the middle proxies', function () {
  this.timeout(60_000);
  let middle: StandinMiddleProxy;
  let secretFile: SecretFile;
  let configServer: ConfigServer;
  let proxy: ProxyProcess;

  before(async () => {
    middle = await StandinMiddleProxy.start();
    secretFile = new SecretFile(middle.secret);
    configServer = await ConfigServer.start(middle.configText());
    proxy = await startProxy({
      env: await middleEnv({ secretFile: secretFile.path, configUrl: configServer.url }),
    });
  });
  after(async () => {
    await proxy?.stop();
    await middle?.close();
    await configServer?.close();
    secretFile?.remove();
  });

  it('answers 200 while a middle proxy is connected and 503 once the only one is gone', async () => {
    await waitUntilReady(proxy);
    expect((await stats(proxy)).get('ready_targets')).to.equal('1');
    await middle.close();
    await eventually(async () => ((await readyz(proxy)) === 503 ? true : undefined), 10_000, 100);
    const s = await eventually(async () => {
      const m = await stats(proxy);
      return m.get('ready_targets') === '0' ? m : undefined;
    }, 5000);
    expect(s.get('active_targets')).to.equal('1');
    expect(proxy.child.exitCode).to.equal(null);
  });
});

describe('middle mode: starting up', function () {
  this.timeout(60_000);

  it('MODE=middle with an unreachable PROXY_SECRET_URL and nothing cached: exits non-zero naming PROXY_SECRET_URL', async () => {
    const closed = await freePort();
    const proxy = await startProxy({
      env: {
        SECRET,
        MODE: 'middle',
        PROXY_SECRET_URL: `http://127.0.0.1:${closed}/getProxySecret`,
        PROXY_CONFIG_URL: `http://127.0.0.1:${closed}/getProxyConfig`,
        DC_ADDRS: await deadDcAddrs(),
      },
      waitReady: false,
    });
    const code = await Promise.race([
      proxy.exited,
      new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 20_000)),
    ]);
    try {
      expect(code).to.not.equal('running');
      expect(code).to.not.equal(0);
      expect(proxy.output()).to.include('PROXY_SECRET_URL');
    } finally {
      await proxy.stop();
    }
  });

  it('a proxy secret cached by an earlier start lets middle mode start while PROXY_SECRET_URL is unreachable', async () => {
    const middle = await StandinMiddleProxy.start();
    const secretFile = new SecretFile(middle.secret);
    const dataDir = mkdtempSync(join(tmpdir(), 'mtkube-middle-data-'));
    const configServer = await ConfigServer.start(middle.configText());
    try {
      const first = await startProxy({
        dataDir,
        env: await middleEnv({ secretFile: secretFile.path, configUrl: configServer.url }),
      });
      await waitUntilReady(first);
      await first.stop();

      const closed = await freePort();
      const second = await startProxy({
        dataDir,
        env: await middleEnv({
          secretFile: `http://127.0.0.1:${closed}/getProxySecret`,
          configUrl: configServer.url,
        }),
      });
      try {
        await waitUntilReady(second);
        const client = await Obfs2StreamClient.connect({ port: second.port, secret: SECRET });
        try {
          await echoThrough(client, [middle]);
        } finally {
          await client.close();
        }
      } finally {
        await second.stop();
      }
    } finally {
      await middle.close();
      await configServer.close();
      secretFile.remove();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("MODE=direct with TAG set: direct mode (proxy_mode 1), straight to the DC, Telegram's files never fetched", async () => {
    const dc = await startStandinDc();
    const middle = await StandinMiddleProxy.start();
    const secretFile = new SecretFile(middle.secret);
    const configServer = await ConfigServer.start(middle.configText());
    const proxy = await startProxy({
      env: {
        SECRET,
        TAG,
        MODE: 'direct',
        PROXY_SECRET_URL: secretFile.path,
        PROXY_CONFIG_URL: configServer.url,
        DC_ADDRS: `2=127.0.0.1:${dc.port}`,
      },
    });
    try {
      const client = await Obfs2Client.connect({
        port: proxy.port,
        secret: Buffer.from(SECRET, 'hex'),
        dc: 2,
      });
      try {
        const packet = randomBytes(64);
        client.send(packet);
        expect((await client.receive()).payload.equals(packet)).to.equal(true);
      } finally {
        client.close();
      }
      expect(dc.stats.connections).to.equal(1);
      expect((await stats(proxy)).get('proxy_mode')).to.equal('1');
      expect(await readyz(proxy)).to.equal(200);
      expect(configServer.requests).to.equal(0);
      expect(middle.connectionsAccepted).to.equal(0);
    } finally {
      await proxy.stop();
      await dc.stop();
      await middle.close();
      await configServer.close();
      secretFile.remove();
    }
  });
});
