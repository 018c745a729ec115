// Two proxies behind one name sharing a real redis-server (STATE_URL): a replay recorded at one is
// refused at the other, a connection limit holds for both together, a quota is summed over both
// and survives their restarts, and when the store dies they keep serving by the documented
// fallbacks until it is back.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { eventually, metrics, sample } from '../../support/http-get.js';
import { type MaskServer, startMaskServer } from '../../support/mask-server.js';
import { expectMasked } from '../../support/masked-proxy.js';
import { Obfs2Client } from '../../support/obfs2-client.js';
import { type ProxyProcess, startProxy } from '../../support/proxy-process.js';
import { type RedisServer, startRedis } from '../../support/redis-server.js';
import { type StandinDc, startStandinDc } from '../../support/standin-dc.js';

const ALICE = '00112233445566778899aabbccddeeff';
const LIMITED = 'ffeeddccbbaa99887766554433221100';
const METERED = '0123456789abcdef0123456789abcdef';

async function echo(port: number, secret: string, size = 16): Promise<Obfs2Client> {
  const c = await Obfs2Client.connect({ port, secret: Buffer.from(secret, 'hex') });
  const p = randomBytes(size);
  p.writeUInt32LE(0x01020304, 0);
  c.send(p);
  const back = await c.receive(5_000);
  expect(back.payload.equals(p)).to.equal(true);
  return c;
}

/** Resolves once a client with `secret` gets an echo through (and closes again); throws after `timeoutMs`. */
function getsThroughSoon(port: number, secret: string, timeoutMs?: number, stepMs?: number): Promise<true> {
  return eventually(
    async () => {
      try {
        const c = await echo(port, secret);
        await c.close();
        return true;
      } catch {
        return undefined;
      }
    },
    timeoutMs,
    stepMs,
  );
}

/** True when the proxy closes the client without relaying. */
async function refused(port: number, secret: string): Promise<boolean> {
  const c = await Obfs2Client.connect({ port, secret: Buffer.from(secret, 'hex') });
  c.send(Buffer.alloc(16, 1));
  try {
    await c.waitForClose(6_000);
    return true;
  } catch {
    await c.close();
    return false;
  }
}

describe('shared state: two proxies and one redis-server behave as one proxy', function () {
  this.timeout(180_000);
  let dc: StandinDc;
  let mask: MaskServer;
  let redis: RedisServer;
  let dir: string;
  let a: ProxyProcess;
  let b: ProxyProcess;

  const start = (name: string): Promise<ProxyProcess> =>
    startProxy({
      dataDir: join(dir, name),
      env: {
        USERS_FILE: join(dir, 'users.yaml'),
        STATE_URL: redis.url,
        STATE_REPLICAS: '2',
        DC_ADDRS: `2=127.0.0.1:${dc.port}`,
        MASK_HOST: '127.0.0.1',
        MASK_PORT: String(mask.port),
        HANDSHAKE_TIMEOUT: '3',
      },
    });

  before(async () => {
    dc = await startStandinDc();
    mask = await startMaskServer();
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'mtkube-shared-'));
    writeFileSync(
      join(dir, 'users.yaml'),
      `users:
  alice: { secret: ${ALICE} }
  limited: { secret: ${LIMITED}, maxConnections: 1 }
  metered: { secret: ${METERED}, quota: 40000, quotaPeriod: monthly }
`,
    );
    [a, b] = await Promise.all([start('a'), start('b')]);
    await eventually(async () =>
      sample(await metrics(a), 'mtproxy_state_store_up') === 1 ? true : undefined,
    );
    await eventually(async () =>
      sample(await metrics(b), 'mtproxy_state_store_up') === 1 ? true : undefined,
    );
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
    await mask?.stop();
    await dc?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a handshake recorded at one proxy and replayed to the other is masked', async () => {
    const client = await echo(a.port, ALICE);
    await client.close();
    const dcBefore = dc.stats.connections;
    await expectMasked(b, mask, client.header, 2_000);
    expect(dc.stats.connections).to.equal(dcBefore);
  });

  it('a user with maxConnections: 1 gets one connection across both proxies', async () => {
    const first = await echo(a.port, LIMITED);
    expect(await refused(b.port, LIMITED), 'the second, at the other proxy').to.equal(true);
    await first.close();
    await getsThroughSoon(b.port, LIMITED);
    await eventually(async () =>
      sample(await metrics(b), 'mtproxy_user_refused_total{user="limited",reason="max-connections"}') === 1
        ? true
        : undefined,
    );
  });

  it('a quota is reached by traffic split over both and still holds after both restart', async () => {
    // 12 KB echoed at each proxy is 24 KB counted there: under the 40 KB quota alone, over it together.
    for (const proxy of [a, b]) {
      const c = await echo(proxy.port, METERED, 12_000);
      await c.close();
    }
    await eventually(async () => ((await refused(a.port, METERED)) ? true : undefined), 20_000);
    expect(await refused(b.port, METERED)).to.equal(true);
    expect(redis.cli('GET', `mtkube:q:metered:${new Date().toISOString().slice(0, 7)}`).trim()).to.match(
      /^\d+$/,
    );
    // Replaced pods start with an empty /data: the usage can only come from the store.
    await Promise.all([a.stop(), b.stop()]);
    [a, b] = await Promise.all([start('a2'), start('b2')]);
    await eventually(async () => ((await refused(a.port, METERED)) ? true : undefined), 20_000);
    expect(await refused(b.port, METERED)).to.equal(true);
  });

  it("a crashed proxy's connections are given back within the lease (15 s)", async () => {
    const held = await echo(a.port, LIMITED);
    expect(await refused(b.port, LIMITED)).to.equal(true);
    await a.stop('SIGKILL');
    await held.close();
    const since = Date.now();
    await getsThroughSoon(b.port, LIMITED, 25_000, 1_000);
    expect(Date.now() - since).to.be.below(20_000);
    a = await start('a3');
  });

  it('the store killed mid-run: both keep serving by the fallbacks, counted; back: sharing resumes', async () => {
    await redis.stop('SIGKILL');
    await eventually(async () =>
      sample(await metrics(a), 'mtproxy_state_store_up') === 0 ? true : undefined,
    );
    // Replays: the local cache only (STATE_REPLAY_FALLBACK=local); a real client still gets through.
    const client = await echo(a.port, ALICE);
    await client.close();
    await expectMasked(a, mask, client.header, 2_000);
    expect(sample(await metrics(a), 'mtproxy_state_fallbacks_total{protection="replay"}')).to.be.at.least(1);
    // Limits: each proxy allows its share, ceil(1 / 2) = 1.
    const limited = await echo(a.port, LIMITED);
    await limited.close();
    await eventually(async () =>
      (sample(await metrics(a), 'mtproxy_state_fallbacks_total{protection="limits"}') ?? 0) >= 1
        ? true
        : undefined,
    );
    await a.waitForOutput(/state store error; protections use their fallbacks/);
    redis = await startRedis({ port: redis.port });
    await eventually(
      async () => (sample(await metrics(a), 'mtproxy_state_store_up') === 1 ? true : undefined),
      20_000,
    );
    await eventually(
      async () => (sample(await metrics(b), 'mtproxy_state_store_up') === 1 ? true : undefined),
      20_000,
    );
    const again = await echo(a.port, ALICE);
    await again.close();
    await expectMasked(b, mask, again.header, 2_000);
  });
});

describe('shared state: the store password comes from a file and never shows', function () {
  this.timeout(60_000);

  it('a proxy with STATE_PASSWORD_FILE reaches a store that requires a password', async () => {
    const password = `pw-${randomBytes(12).toString('hex')}`;
    const redis = await startRedis({ password });
    const dir = mkdtempSync(join(tmpdir(), 'mtkube-shared-pw-'));
    writeFileSync(join(dir, 'password'), `${password}\n`);
    const proxy = await startProxy({
      env: {
        SECRET: ALICE,
        STATE_URL: `redis://127.0.0.1:${redis.port}/0`,
        STATE_PASSWORD_FILE: join(dir, 'password'),
      },
    });
    try {
      await eventually(async () =>
        sample(await metrics(proxy), 'mtproxy_state_store_up') === 1 ? true : undefined,
      );
      expect(proxy.output()).to.not.contain(password);
    } finally {
      await proxy.stop();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rediss:// reaches a store that speaks TLS only, trusting the CA the process is given', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mtkube-shared-tls-'));
    const run = (args: string[]) => {
      const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
    };
    run([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=test CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
    ]);
    run([
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=127.0.0.1',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
    ]);
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    run([
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      'san.ext',
      '-out',
      'server.pem',
    ]);
    const redis = await startRedis({ tls: { cert: join(dir, 'server.pem'), key: join(dir, 'server.key') } });
    const proxy = await startProxy({
      env: { SECRET: ALICE, STATE_URL: redis.url, NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') },
    });
    try {
      expect(redis.url).to.match(/^rediss:/);
      await eventually(async () =>
        sample(await metrics(proxy), 'mtproxy_state_store_up') === 1 ? true : undefined,
      );
    } finally {
      await proxy.stop();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a wrong password in STATE_URL is logged without the password, and the store counts as down', async () => {
    const redis = await startRedis({ password: 'right-password' });
    const proxy = await startProxy({
      env: { SECRET: ALICE, STATE_URL: `redis://:wrong-password-123@127.0.0.1:${redis.port}/0` },
    });
    try {
      await proxy.waitForOutput(/state store error/);
      expect(sample(await metrics(proxy), 'mtproxy_state_store_up')).to.equal(0);
      expect(proxy.output()).to.not.contain('wrong-password-123');
    } finally {
      await proxy.stop();
      await redis.stop();
    }
  });
});
