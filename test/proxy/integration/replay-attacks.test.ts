// Attacks on replay protection (issue 13, items 1 and 4), each as a prober would run it against a
// real proxy process on 127.0.0.1: flush the cache with garbage, replay the header inside TLS,
// wait for a restart, or catch the primary unable to answer.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { buildClientHello } from '../../../proxy/src/fake-tls/client.js';
import { FakeTlsClient } from '../../support/fake-tls-socket-client.js';
import { eventually, metrics, sample } from '../../support/http-get.js';
import { type MaskServer, startMaskServer } from '../../support/mask-server.js';
import { expectMasked } from '../../support/masked-proxy.js';
import { Obfs2Client } from '../../support/obfs2-client.js';
import { type ProxyProcess, startProxy } from '../../support/proxy-process.js';
import { type StandinDc, startStandinDc } from '../../support/standin-dc.js';

const ALICE = '00112233445566778899aabbccddeeff';
const KEY = Buffer.from(ALICE, 'hex');

/** Sends `hello` and closes at once, as a flooder does; resolves when the bytes are written. */
function fireAndForget(port: number, hello: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => resolve());
    socket.once('connect', () => socket.end(hello, () => resolve()));
    socket.once('close', () => resolve());
  });
}

async function echoOnce(client: FakeTlsClient | Obfs2Client): Promise<void> {
  const p = randomBytes(64);
  p.writeUInt32LE(0x01020304, 0);
  client.send(p);
  const back = await client.receive(10_000);
  expect(back.payload.equals(p)).to.equal(true);
}

describe('replay protection under attack', function () {
  this.timeout(120_000);
  let dc: StandinDc;
  let mask: MaskServer;
  let dataDir: string;
  let proxy: ProxyProcess | undefined;

  const start = (env: Record<string, string> = {}): Promise<ProxyProcess> =>
    startProxy({
      dataDir,
      env: {
        SECRET: ALICE,
        FAKE_TLS_DOMAIN: 'example.com',
        MODES: 'tls,secure',
        DC_ADDRS: `2=127.0.0.1:${dc.port}`,
        MASK_HOST: '127.0.0.1',
        MASK_PORT: String(mask.port),
        REPLAY_CACHE_SIZE: '1024',
        HANDSHAKE_TIMEOUT: '3',
        // The floods come from 127.0.0.1 alone; the per-address limit would refuse them before any
        // handshake (it has tests of its own in under-attack.test.ts).
        MAX_CONNECTIONS_PER_IP: '0',
        ...env,
      },
    });

  before(async () => {
    dc = await startStandinDc();
    mask = await startMaskServer();
  });
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'mtkube-replay-'));
  });
  afterEach(async () => {
    if (proxy !== undefined && proxy.child.exitCode === null) process.kill(proxy.child.pid!, 'SIGCONT');
    await proxy?.stop();
    proxy = undefined;
    rmSync(dataDir, { recursive: true, force: true });
  });
  after(async () => {
    await mask?.stop();
    await dc?.stop();
  });

  it('garbage hellos without a secret cannot flush a real handshake out of the cache', async () => {
    proxy = await start();
    const client = await FakeTlsClient.connect({ port: proxy.port, secret: KEY, domain: 'example.com' });
    await echoOnce(client);
    await client.close();
    // More wrong-MAC hellos than the cache holds: on the old cache each one pushed out the oldest.
    const flood = 1_200;
    for (let sent = 0; sent < flood; sent += 100) {
      await Promise.all(
        Array.from({ length: 100 }, () =>
          fireAndForget(
            proxy!.port,
            buildClientHello({
              secret: randomBytes(16),
              domain: 'example.com',
              now: Date.now() / 1000,
              random: randomBytes,
            }).hello,
          ),
        ),
      );
    }
    await eventually(async () => {
      // Past the per-host throttle the rest are refused before any MAC is checked: both kinds count.
      const text = await metrics(proxy!);
      const n =
        (sample(text, 'mtproxy_handshakes_total{transport="unknown",result="tls-bad-mac"}') ?? 0) +
        (sample(text, 'mtproxy_handshakes_total{transport="unknown",result="throttled"}') ?? 0);
      return n >= flood ? n : undefined;
    }, 60_000);
    const dcBefore = dc.stats.connections;
    await expectMasked(proxy, mask, client.hello);
    expect(dc.stats.connections).to.equal(dcBefore);
    const text = await metrics(proxy);
    expect(sample(text, 'mtproxy_replay_cache_entries'), 'only the real handshake is remembered').to.equal(2);
  });

  it('a fresh hello carrying a recorded session header inside TLS never reaches a DC', async () => {
    proxy = await start();
    const recorded = randomBytes(64);
    const header = (): Buffer => Buffer.from(recorded);
    const first = await FakeTlsClient.connect({
      port: proxy.port,
      secret: KEY,
      domain: 'example.com',
      headerRandom: header,
    });
    await echoOnce(first);
    await first.close();
    const dcBefore = dc.stats.connections;
    // A new hello (new random, valid MAC: the prober replays a whole recorded session whose hello
    // it could not reuse) followed by the recorded header.
    const second = await FakeTlsClient.connect({
      port: proxy.port,
      secret: KEY,
      domain: 'example.com',
      headerRandom: header,
    });
    await second.waitForClose(10_000);
    expect(dc.stats.connections, 'the replayed header reached no DC').to.equal(dcBefore);
    expect(
      sample(await metrics(proxy), 'mtproxy_handshakes_total{transport="unknown",result="replay"}'),
    ).to.equal(1);
  });

  it('the cache survives a restart: a handshake replayed after it is masked; the file is 0600', async () => {
    proxy = await start();
    const client = await FakeTlsClient.connect({ port: proxy.port, secret: KEY, domain: 'example.com' });
    await echoOnce(client);
    await client.close();
    const plain = await Obfs2Client.connect({ port: proxy.port, secret: KEY, transport: 'padded' });
    await echoOnce(plain);
    await plain.close();
    await proxy.stop();
    proxy = await start();
    const dcBefore = dc.stats.connections;
    await expectMasked(proxy, mask, client.hello);
    await expectMasked(proxy, mask, plain.header);
    expect(dc.stats.connections).to.equal(dcBefore);
    expect(statSync(join(dataDir, 'replay-cache.bin')).mode & 0o777).to.equal(0o600);
    const text = await metrics(proxy);
    expect(sample(text, 'mtproxy_replay_cache_entries')).to.equal(3);
    expect(sample(text, 'mtproxy_replay_cache_oldest_age_seconds')).to.be.greaterThan(0);
  });

  it('when the primary cannot answer, a handshake is refused as a replay, and counted', async () => {
    proxy = await start();
    const dcBefore = dc.stats.connections;
    // The primary stops answering (stopped, as a primary stalled by a flood would be); workers run on.
    process.kill(proxy.child.pid!, 'SIGSTOP');
    const since = mask.connections.length;
    const client = await Obfs2Client.connect({ port: proxy.port, secret: KEY, transport: 'padded' });
    client.send(randomBytes(64));
    await eventually(async () => (mask.connections.length > since ? true : undefined), 10_000);
    await client.close();
    process.kill(proxy.child.pid!, 'SIGCONT');
    expect(dc.stats.connections, 'nothing reached a DC').to.equal(dcBefore);
    await eventually(async () => {
      const n = sample(
        await metrics(proxy!),
        'mtproxy_handshakes_total{transport="unknown",result="replay-unanswered"}',
      );
      return n === 1 ? n : undefined;
    });
    await proxy.waitForOutput(/replay checks unanswered by the primary/);
  });
});
