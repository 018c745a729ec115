import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { eventually, httpGet, parseStats, sample } from '../../support/http-get.js';
import { Obfs2Client } from '../../support/obfs2-client.js';
import { type ProxyProcess, startProxy } from '../../support/proxy-process.js';
import { type StandinDc, startStandinDc } from '../../support/standin-dc.js';

const ALICE = '00112233445566778899aabbccddeeff';
const BOB = 'ffeeddccbbaa99887766554433221100';
const CAROL = '0123456789abcdef0123456789abcdef';
const DAVE = 'fedcba9876543210fedcba9876543210';
const FRANK = '00000000111111112222222233333333';

/** Writes the users file the way a mounted Kubernetes Secret changes: a new file swapped in. */
function writeUsers(path: string, yaml: string): void {
  writeFileSync(`${path}.new`, yaml);
  renameSync(`${path}.new`, path);
}

async function echo(port: number, secret: string, localAddress?: string): Promise<Obfs2Client> {
  const c = await Obfs2Client.connect({ port, secret: Buffer.from(secret, 'hex'), dc: 2, localAddress });
  c.send(Buffer.alloc(16, 1));
  const back = await c.receive(5_000);
  expect(back.payload.equals(Buffer.alloc(16, 1))).to.equal(true);
  return c;
}

/** Resolves true when the proxy closes the client without relaying anything. */
async function refused(port: number, secret: string, localAddress?: string): Promise<boolean> {
  const c = await Obfs2Client.connect({ port, secret: Buffer.from(secret, 'hex'), dc: 2, localAddress });
  c.send(Buffer.alloc(16, 1));
  try {
    await c.waitForClose(5_000);
    return true;
  } catch {
    c.close();
    return false;
  }
}

describe('users: named secrets with limits, live reload and per-user numbers', function () {
  this.timeout(90_000);
  let dc: StandinDc;
  let dir: string;
  let usersFile: string;
  let proxy: ProxyProcess;
  const metrics = async (): Promise<string> =>
    (await httpGet(`http://127.0.0.1:${proxy.metricsPort}/metrics`)).body;
  const refusals = async (user: string, reason: string): Promise<number> =>
    sample(await metrics(), `mtproxy_user_refused_total{user="${user}",reason="${reason}"}`) ?? 0;

  before(async () => {
    dc = await startStandinDc();
    dir = mkdtempSync(join(tmpdir(), 'mtkube-users-'));
    usersFile = join(dir, 'users.yaml');
    writeUsers(
      usersFile,
      `users:
  alice: { secret: ${ALICE}, maxConnections: 2 }
  bob: { secret: ${BOB}, expires: 2020-01-01T00:00:00Z }
  carol: { secret: ${CAROL}, maxUniqueIps: 2, uniqueIpWindowSeconds: 600 }
  dave: { secret: ${DAVE}, quota: 4000 }
  frank: { secret: ${FRANK} }
`,
    );
    proxy = await startProxy({
      dataDir: dir,
      env: { USERS_FILE: usersFile, WORKERS: '2', DC_ADDRS: `2=127.0.0.1:${dc.port}` },
    });
  });
  after(async () => {
    await proxy?.stop();
    await dc?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints a link per user and no generated secret', () => {
    expect(proxy.output()).to.contain(`User alice: ${ALICE}`);
    expect(proxy.output()).to.contain(`tg://proxy?server=127.0.0.1&port=${proxy.port}&secret=dd${CAROL}`);
    expect(proxy.output()).to.not.contain('Secret 1:');
  });

  it('refuses a user over its connection limit, counted for that user and reason, while it keeps its two', async () => {
    const a1 = await echo(proxy.port, ALICE);
    const a2 = await echo(proxy.port, ALICE);
    expect(await refused(proxy.port, ALICE)).to.equal(true);
    await eventually(async () => ((await refusals('alice', 'max-connections')) === 1 ? true : undefined));
    // Its two connections, on whichever workers they landed, still work; and Frank is unaffected.
    for (const c of [a1, a2]) {
      c.send(Buffer.alloc(8, 2));
      await c.receive();
    }
    (await echo(proxy.port, FRANK)).close();
    a1.close();
    a2.close();
  });

  it('refuses an expired user', async () => {
    expect(await refused(proxy.port, BOB)).to.equal(true);
    await eventually(async () => ((await refusals('bob', 'expired')) === 1 ? true : undefined));
  });

  it('limits unique client addresses per user across the pod', async () => {
    (await echo(proxy.port, CAROL, '127.0.0.2')).close();
    (await echo(proxy.port, CAROL, '127.0.0.3')).close();
    expect(await refused(proxy.port, CAROL, '127.0.0.4')).to.equal(true);
    (await echo(proxy.port, CAROL, '127.0.0.2')).close();
    await eventually(async () => ((await refusals('carol', 'max-unique-ips')) === 1 ? true : undefined));
  });

  it('closes a user at its quota, refuses it afterwards, and keeps the count across a restart', async () => {
    const c = await echo(proxy.port, DAVE);
    // 2 x 1 KiB each way is over 4000 bytes: the primary sees it within a counter period.
    for (let i = 0; i < 2; i++) {
      c.send(Buffer.alloc(1024, 3));
      await c.receive().catch(() => undefined);
    }
    await c.waitForClose(10_000);
    expect(await refused(proxy.port, DAVE)).to.equal(true);
    await eventually(async () => ((await refusals('dave', 'quota')) >= 1 ? true : undefined));
    await proxy.stop();
    const usage = JSON.parse(readFileSync(join(dir, 'usage.json'), 'utf8')) as {
      bytesUsed: Record<string, number>;
    };
    expect(usage.bytesUsed.dave).to.be.at.least(4000);
    proxy = await startProxy({
      dataDir: dir,
      env: { USERS_FILE: usersFile, WORKERS: '2', DC_ADDRS: `2=127.0.0.1:${dc.port}` },
    });
    expect(await refused(proxy.port, DAVE)).to.equal(true);
  });

  it('applies a live edit: a disabled user is cut off, an unchanged one keeps its open connections', async () => {
    const alice = await echo(proxy.port, ALICE);
    const carol = await echo(proxy.port, CAROL, '127.0.0.2');
    writeUsers(
      usersFile,
      `users:
  alice: { secret: ${ALICE}, maxConnections: 2 }
  carol: { secret: ${CAROL}, maxUniqueIps: 2, enabled: false }
  erin: { secret: ${BOB} }
`,
    );
    await proxy.waitForOutput(/"message":"users reloaded"/, 15_000);
    await carol.waitForClose(10_000);
    // Alice's connection survived the reload and still relays.
    alice.send(Buffer.alloc(8, 4));
    expect((await alice.receive()).payload.equals(Buffer.alloc(8, 4))).to.equal(true);
    // Erin (Bob's old secret) is new and works; Carol is refused as disabled.
    (await echo(proxy.port, BOB)).close();
    expect(await refused(proxy.port, CAROL, '127.0.0.2')).to.equal(true);
    await eventually(async () => ((await refusals('carol', 'disabled')) >= 1 ? true : undefined));
    alice.close();
  });

  it('rejects a broken users file whole and keeps the users in force', async () => {
    writeUsers(usersFile, 'users:\n  alice: { secret: not-hex }\n');
    await proxy.waitForOutput(/"message":"users file rejected; keeping the users in force"/, 15_000);
    (await echo(proxy.port, ALICE)).close();
    expect(proxy.output()).to.not.contain('not-hex');
  });

  it('shows per-user numbers in /metrics and in a users section of /stats, by name only', async () => {
    // Since the restart above, Alice connected twice (the live edit and the broken-file tests).
    const text = await eventually(async () => {
      const t = await metrics();
      return (sample(t, 'mtproxy_user_connections_total{user="alice"}') ?? 0) >= 2 ? t : undefined;
    });
    expect(
      sample(text, 'mtproxy_user_relayed_bytes_total{user="alice",direction="from_client"}'),
    ).to.be.above(0);
    for (const s of [ALICE, BOB, CAROL, DAVE]) expect(text).to.not.contain(s);
    const stats = await eventually(async () => {
      const parsed = parseStats((await httpGet(`http://127.0.0.1:${proxy.statsPort}/stats`)).body);
      return Number(parsed.get('user_connections_total:alice')) >= 1 ? parsed : undefined;
    });
    expect(stats.get('>>>>>>users>>>>>>')).to.equal('start');
    expect(stats.get('user_octets_from_client:alice')).to.match(/^\d+$/);
    expect(stats.has('user_connections:dave'), 'removed users leave the section').to.equal(false);
    expect(stats.has('user_connections:erin')).to.equal(true);
  });
});
