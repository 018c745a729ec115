// Named users in Kubernetes: spec.users becomes the proxy's users file in a Secret the pods mount,
// each user gets a secret of its own (generated once, rotated on request, never in the CR) and links
// of its own, and changing users restarts no pod. The last test runs our proxy with exactly what
// was rendered and connects with a user's link.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { MTProxySpec, MTProxyUser } from '../../operator/src/api/types.js';
import { parseUsersFile } from '../../proxy/src/users/users-file.js';
import { eventually } from '../cluster/eventually.js';
import { Obfs2Client } from '../support/obfs2-client.js';
import { freePort, type ProxyProcess, startProxy } from '../support/proxy-process.js';
import { type StandinDc, startStandinDc } from '../support/standin-dc.js';
import {
  type DeploymentJson,
  envOf,
  freshTestBedPerTest,
  resolveContainerEnv,
  type TestBed,
} from './support/harness.js';

const HEX32 = /^[0-9a-f]{32}$/;
const USERS_FILE = '/etc/mtkube/users/users.yaml';
const CHECKSUM = 'mtkube.dev/secrets-checksum';

interface LinksJson {
  links: { user: string; secret: string; enabled: boolean; form: string; tg: string; tme: string }[];
}

const alice: MTProxyUser = {
  name: 'alice',
  maxConnections: 10,
  maxUniqueIPs: 3,
  uniqueIPWindowSeconds: 600,
  quota: '50GiB',
  expires: '2027-01-01T00:00:00Z',
};
const bob: MTProxyUser = { name: 'bob', quota: 1_000_000 };

/** name -> secret, from the users file the operator rendered (parsed by the proxy's own parser). */
async function renderedUsers(bed: TestBed, name = 'tg') {
  const text = (await bed.secretData(`${name}-users`))['users.yaml']!;
  return new Map(parseUsersFile(text).map((u) => [u.name, u]));
}

async function secretOf(bed: TestBed, user: string): Promise<string> {
  const u = (await renderedUsers(bed)).get(user);
  if (!u) throw new Error(`user ${user} is not in the users file`);
  return u.secret.toString('hex');
}

async function deployment(bed: TestBed, name = 'tg') {
  return bed.get<DeploymentJson>('deployment', name);
}

describe('operator: named users with their own secrets, limits and links', function () {
  this.timeout(120_000);
  let bed: TestBed;
  freshTestBedPerTest((b) => {
    bed = b;
  });

  it('two users get distinct secrets, their limits in the mounted users file, and links of their own', async () => {
    await bed.startOperator();
    await bed.provideVolume('tg-data');
    await bed.applyProxy('tg', { publicAddress: { host: 'p.example.com' }, users: [alice, bob] });
    const mtp = await bed.waitForCondition('tg', 'UsersReady', 'True', 'UsersAvailable');
    await bed.waitForCondition('tg', 'Ready', 'True');

    const users = await renderedUsers(bed);
    expect([...users.keys()]).to.deep.equal(['alice', 'bob']);
    expect(users.get('alice')!.limits).to.deep.equal({
      maxConnections: 10,
      maxUniqueIps: 3,
      uniqueIpWindowMs: 600_000,
      quotaBytes: 50 * 1024 ** 3,
      quotaPeriod: 'none',
      expiresAt: Date.parse('2027-01-01T00:00:00Z'),
    });
    expect(users.get('bob')!.limits.quotaBytes).to.equal(1_000_000);
    const a = users.get('alice')!.secret.toString('hex');
    const b = users.get('bob')!.secret.toString('hex');
    expect(a).to.match(HEX32);
    expect(b).to.match(HEX32);
    expect(a).to.not.equal(b);
    // Kept by the operator next to the proxy's other secrets, with the rotation they were made for.
    expect(JSON.parse((await bed.secretData('tg-secrets'))['users.json']!)).to.deep.equal({
      alice: { secret: a, rotation: 0 },
      bob: { secret: b, rotation: 0 },
    });

    const links = await bed.secretData('tg-links');
    expect(links['links.txt']).to.include(`alice dd tg://proxy?server=p.example.com&port=443&secret=dd${a}`);
    expect(links['links.txt']).to.include(
      `bob dd https://t.me/proxy?server=p.example.com&port=443&secret=dd${b}`,
    );
    expect(links['links.txt']).to.match(/^secret1 dd tg:/m);
    const json = JSON.parse(links['links.json']!) as LinksJson;
    expect(json.links.map((l) => `${l.user} ${l.form} ${l.enabled}`)).to.deep.equal([
      'secret1 dd true',
      'alice dd true',
      'bob dd true',
    ]);

    const dep = await deployment(bed);
    const pod = dep.spec.template.spec;
    expect(envOf(dep).USERS_FILE?.value).to.equal(USERS_FILE);
    expect(envOf(dep).SECRET?.valueFrom?.secretKeyRef).to.deep.equal({ name: 'tg-secrets', key: 'secrets' });
    expect(pod.containers[0]!.volumeMounts).to.deep.include({
      name: 'users',
      mountPath: '/etc/mtkube/users',
      readOnly: true,
    });
    expect(pod.volumes?.find((v) => v.name === 'users')?.secret).to.deep.include({
      secretName: 'tg-users',
      items: [{ key: 'users.yaml', path: 'users.yaml' }],
    });

    expect(mtp.status?.usersSecretName).to.equal('tg-users');
    expect(mtp.status?.users?.map((u) => ({ ...u, fingerprint: undefined }))).to.deep.equal([
      { name: 'alice', enabled: true, served: true, secretRotation: 0, fingerprint: undefined },
      { name: 'bob', enabled: true, served: true, secretRotation: 0, fingerprint: undefined },
    ]);
    const events = await bed.kubectlOk(['get', 'events', '-o', 'json']);
    expect(events).to.include('UserSecretsGenerated');
    for (const text of [JSON.stringify(await bed.proxy('tg')), events]) {
      expect(text).to.not.include(a);
      expect(text).to.not.include(b);
    }
  });

  it('keeps the secrets across an operator restart; a rotation renews one user only, and users change without a roll', async () => {
    let op = await bed.startOperator();
    await bed.provideVolume('tg-data');
    const spec = (users: MTProxyUser[]): MTProxySpec => ({ publicAddress: { host: 'p.example.com' }, users });
    await bed.applyProxy('tg', spec([alice, bob]));
    await bed.waitForCondition('tg', 'UsersReady', 'True');
    await bed.waitForCondition('tg', 'Ready', 'True');
    const [a, b] = [await secretOf(bed, 'alice'), await secretOf(bed, 'bob')];
    const before = await deployment(bed);
    const checksum = before.spec.template.metadata.annotations?.[CHECKSUM];
    expect(await bed.list('replicasets', 'app.kubernetes.io/instance=tg')).to.have.length(1);

    // A new operator, and a limit changed: the file follows, the secrets stay.
    await bed.stopOperator(op);
    op = await bed.startOperator();
    await bed.provideVolume('tg-data');
    await bed.applyProxy('tg', spec([{ ...alice, maxConnections: 20 }, bob]));
    await eventually(async () => {
      expect((await renderedUsers(bed)).get('alice')?.limits.maxConnections).to.equal(20);
    });
    expect(await secretOf(bed, 'alice')).to.equal(a);
    expect(await secretOf(bed, 'bob')).to.equal(b);

    // Bob's secret is rotated; Alice's stays.
    await bed.applyProxy(
      'tg',
      spec([
        { ...alice, maxConnections: 20 },
        { ...bob, secretRotation: 1 },
      ]),
    );
    await eventually(async () => expect(await secretOf(bed, 'bob')).to.not.equal(b));
    const rotated = await secretOf(bed, 'bob');
    expect(rotated).to.match(HEX32);
    expect(await secretOf(bed, 'alice')).to.equal(a);
    await eventually(async () => {
      const links = (await bed.secretData('tg-links'))['links.txt']!;
      expect(links).to.include(`secret=dd${rotated}`);
      expect(links).to.not.include(b);
      expect(links).to.include(`secret=dd${a}`);
    });
    const mtp = await bed.waitForCondition('tg', 'UsersReady', 'True');
    const bobStatus = mtp.status?.users?.find((u) => u.name === 'bob');
    expect(bobStatus?.secretRotation).to.equal(1);
    const events = await bed.kubectlOk(['get', 'events', '-o', 'json']);
    expect(events).to.include('UserSecretRotated').and.include('New secret for user bob (secretRotation 1)');
    expect(events).to.not.include(rotated);

    // None of this touched the pods: same template, same checksum, no new ReplicaSet.
    const after = await deployment(bed);
    expect(after.metadata.generation).to.equal(before.metadata.generation);
    expect(after.spec.template.metadata.annotations?.[CHECKSUM]).to.equal(checksum);
    expect(await bed.list('replicasets', 'app.kubernetes.io/instance=tg')).to.have.length(1);

    // The rotation only goes up.
    const down = await bed.kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'mtkube.dev/v1alpha1',
        kind: 'MTProxy',
        metadata: { name: 'tg' },
        spec: spec([
          { ...alice, maxConnections: 20 },
          { ...bob, secretRotation: 0 },
        ]),
      }),
    );
    expect(down.code).to.not.equal(0);
    expect(down.stderr).to.include('secretRotation only goes up');
  });

  it('removing a user takes it out of the file, the links and the kept secrets; without users the file is no longer mounted and holds nobody', async () => {
    await bed.startOperator();
    await bed.provideVolume('tg-data');
    await bed.applyProxy('tg', { publicAddress: { host: 'p.example.com' }, users: [alice, bob] });
    await bed.waitForCondition('tg', 'UsersReady', 'True');
    const b = await secretOf(bed, 'bob');

    await bed.applyProxy('tg', { publicAddress: { host: 'p.example.com' }, users: [alice] });
    await eventually(async () => expect([...(await renderedUsers(bed)).keys()]).to.deep.equal(['alice']));
    await eventually(async () => {
      expect((await bed.secretData('tg-links'))['links.txt']).to.not.include(b);
      expect(Object.keys(JSON.parse((await bed.secretData('tg-secrets'))['users.json']!))).to.deep.equal([
        'alice',
      ]);
    });
    expect((await bed.proxy('tg')).status?.users?.map((u) => u.name)).to.deep.equal(['alice']);

    // Added again, Bob gets a new secret: removing a user revoked its old link.
    await bed.applyProxy('tg', { publicAddress: { host: 'p.example.com' }, users: [alice, bob] });
    await eventually(async () => expect((await renderedUsers(bed)).has('bob')).to.equal(true));
    expect(await secretOf(bed, 'bob')).to.not.equal(b);

    await bed.applyProxy('tg', { publicAddress: { host: 'p.example.com' } });
    await eventually(async () => {
      expect(envOf(await deployment(bed))).to.not.have.property('USERS_FILE');
      expect((await bed.secretData('tg-users'))['users.yaml'], 'no secret left behind').to.match(
        /^users: \{\}$/m,
      );
    });
    const mtp = await bed.waitForCondition('tg', 'Ready', 'True');
    expect(mtp.status).to.not.have.property('users');
    expect(mtp.status?.conditions?.map((c) => c.type)).to.not.include('UsersReady');
  });

  it('the API server rejects invalid users, naming the field', async () => {
    const attempt = (spec: MTProxySpec) =>
      bed.kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'mtkube.dev/v1alpha1',
          kind: 'MTProxy',
          metadata: { name: 'bad' },
          spec,
        }),
      );
    const badName = await attempt({ users: [{ name: 'not ok!' }] });
    expect(badName.stderr).to.match(/spec\.users\[0\]\.name: Invalid value: "not ok!"/);
    const lots = await attempt({ users: [{ name: 'alice', quota: 'lots' }] });
    expect(lots.stderr).to.match(/spec\.users\[0\]\.quota: Invalid value: "lots"/);
    const negative = await attempt({ users: [{ name: 'alice', quota: -1 }] });
    expect(negative.stderr).to.match(/spec\.users\[0\]\.quota: Invalid value: -1/);
    const badTag = await attempt({ users: [{ name: 'alice', adTag: 'xyz' }] });
    expect(badTag.stderr).to.match(/spec\.users\[0\]\.adTag: Invalid value/);
    const direct = await attempt({
      users: [{ name: 'alice', adTag: 'ab'.repeat(16) }],
      upstream: { mode: 'direct' },
    });
    expect(direct.stderr).to.include("a user's ad tag needs the middle proxy");
    const reserved = await attempt({ users: [{ name: 'secret2' }] });
    expect(reserved.stderr).to.include('belong to the secrets of spec.secrets');
    const twice = await attempt({ users: [{ name: 'alice' }, { name: 'alice' }] });
    expect(twice.stderr).to.match(/spec\.users\[1\]: Duplicate value/);
    const nobody = await attempt({ secrets: { count: 0 } });
    expect(nobody.stderr).to.include('secrets.count 0 serves nobody without users');
    const expires = await attempt({ users: [{ name: 'alice', expires: 'next year' }] });
    expect(expires.stderr).to.match(/spec\.users\[0\]\.expires/);
    for (const r of [badName, lots, negative, badTag, direct, reserved, twice, nobody, expires]) {
      expect(r.code).to.not.equal(0);
    }
    expect(await bed.find('mtproxy', 'bad')).to.equal(undefined);

    // What is valid: sizes in the forms the proxy reads, and no secrets of SECRET at all.
    const ok = await attempt({
      secrets: { count: 0 },
      users: [
        { name: 'a', quota: '500 MB' },
        { name: 'b.c_d-1', quota: '1.5TiB', enabled: false },
        { name: 'e', quota: 1024, adTag: 'AB'.repeat(16), expires: '2030-06-01T12:00:00+02:00' },
      ],
    });
    expect(ok.code, ok.stderr).to.equal(0);
  });

  it("takes the users' secrets from a Secret the user manages, and says which are missing", async () => {
    const mine = '0123456789abcdef0123456789abcdef';
    await bed.kubectlOk(['create', 'secret', 'generic', 'people', `--from-literal=alice=${mine}`]);
    await bed.kubectlOk(['label', 'secret', 'people', 'mtkube.dev/mtproxy=tg']);
    await bed.startOperator();
    await bed.provideVolume('tg-data');
    await bed.applyProxy('tg', {
      publicAddress: { host: 'p.example.com' },
      usersSecretName: 'people',
      users: [{ name: 'alice' }, { name: 'bob' }],
    });
    const mtp = await bed.waitForCondition('tg', 'UsersReady', 'False', 'UserSecretsMissing');
    expect(mtp.status?.conditions?.find((c) => c.type === 'UsersReady')?.message).to.include('missing: bob');
    expect(mtp.status?.users?.map((u) => `${u.name} ${u.served}`)).to.deep.equal(['alice true', 'bob false']);
    expect(await secretOf(bed, 'alice')).to.equal(mine);
    expect((await renderedUsers(bed)).has('bob')).to.equal(false);
    expect((await bed.secretData('tg-links'))['links.txt']).to.include(
      `alice dd tg://proxy?server=p.example.com&port=443&secret=dd${mine}`,
    );
    expect((await bed.secretData('tg-secrets'))['users.json'], 'nothing generated for users').to.equal(
      undefined,
    );

    await bed.kubectlOk([
      'patch',
      'secret',
      'people',
      '--type=merge',
      '-p',
      JSON.stringify({ stringData: { bob: 'fedcba9876543210fedcba9876543210' } }),
    ]);
    await bed.waitForCondition('tg', 'UsersReady', 'True');
    expect(await secretOf(bed, 'bob')).to.equal('fedcba9876543210fedcba9876543210');
  });
});

/** Replaces the file the way the kubelet updates a mounted Secret: a new file swapped in. */
function swapIn(path: string, text: string): void {
  writeFileSync(`${path}.new`, text);
  renameSync(`${path}.new`, path);
}

/** Resolves true when the proxy closes the client without relaying anything. */
async function refused(port: number, secret: string): Promise<boolean> {
  const c = await Obfs2Client.connect({ port, secret, dc: 2 });
  c.send(Buffer.alloc(16, 1));
  try {
    await c.waitForClose(5_000);
    return true;
  } catch {
    await c.close();
    return false;
  }
}

async function echoes(port: number, secret: string): Promise<boolean> {
  const c = await Obfs2Client.connect({ port, secret, dc: 2 });
  try {
    const payload = Buffer.alloc(64, 7);
    c.send(payload);
    return (await c.receive()).payload.equals(payload);
  } finally {
    await c.close();
  }
}

describe('operator: the rendered users file serves real clients', function () {
  this.timeout(120_000);
  let bed: TestBed;
  let dc: StandinDc;
  let proxy: ProxyProcess | undefined;
  let dir: string;

  beforeEach(async () => {
    dc = await startStandinDc();
    dir = mkdtempSync(join(tmpdir(), 'mtkube-pod-'));
  });
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
    await dc?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  freshTestBedPerTest((b) => {
    bed = b;
  });

  it("a user's link from the links Secret gets through, a disabled user is refused, and a live edit applies without a restart", async () => {
    const clientPort = await freePort();
    const base: MTProxySpec = {
      containerPort: clientPort,
      workers: 1,
      modes: ['secure', 'classic'],
      secrets: { count: 0 },
      service: { type: 'ClusterIP' },
      publicAddress: { host: '127.0.0.1', port: clientPort, externalIP: '127.0.0.1' },
      upstream: { dcAddresses: [{ dc: 2, address: `127.0.0.1:${dc.port}` }] },
      metrics: { port: await freePort() },
    };
    await bed.startOperator();
    await bed.provideVolume('tg-data');
    await bed.applyProxy('tg', { ...base, users: [alice, { name: 'bob', enabled: false }] });
    await bed.waitForCondition('tg', 'UsersReady', 'True');
    await bed.waitForCondition('tg', 'Ready', 'True');

    // The pod as the kubelet would start it: env resolved, the users Secret mounted, /data empty.
    const container = (await deployment(bed)).spec.template.spec.containers[0]!;
    const env = await resolveContainerEnv(bed, container, '127.0.0.1');
    expect(env, 'secrets.count 0: only the named users').to.not.have.property('SECRET');
    const mount = container.volumeMounts?.find((m) => env.USERS_FILE?.startsWith(`${m.mountPath}/`));
    expect(mount?.name).to.equal('users');
    const usersFile = join(dir, 'users.yaml');
    swapIn(usersFile, (await bed.secretData('tg-users'))['users.yaml']!);
    env.USERS_FILE = usersFile;
    env.DATA_DIR = join(dir, 'data');
    proxy = await startProxy({ env, args: container.args ?? [], dataDir: env.DATA_DIR, port: clientPort });

    const links = JSON.parse((await bed.secretData('tg-links'))['links.json']!) as LinksJson;
    expect(links.links.map((l) => `${l.user} ${l.form} ${l.enabled}`)).to.deep.equal([
      'alice dd true',
      'alice plain true',
      'bob dd false',
      'bob plain false',
    ]);
    const param = (user: string, form: string) =>
      new URL(links.links.find((l) => l.user === user && l.form === form)!.tg).searchParams.get('secret')!;
    for (const form of ['dd', 'plain']) {
      expect(await echoes(clientPort, param('alice', form)), `alice ${form}`).to.equal(true);
    }
    expect(await refused(clientPort, param('bob', 'dd')), 'bob is disabled').to.equal(true);
    expect((await bed.secretData('tg-links'))['links.txt']).to.match(/^# disabled: bob dd tg:/m);

    // Enable Bob and disable Alice in the MTProxy; the new file reaches the running proxy.
    await bed.applyProxy('tg', { ...base, users: [{ ...alice, enabled: false }, { name: 'bob' }] });
    const text = await eventually(async () => {
      const t = (await bed.secretData('tg-users'))['users.yaml']!;
      expect(parseUsersFile(t).find((u) => u.name === 'bob')?.enabled).to.equal(true);
      return t;
    });
    swapIn(usersFile, text);
    await proxy.waitForOutput(/users reloaded/, 10_000);
    expect(await echoes(clientPort, param('bob', 'dd')), 'bob is enabled').to.equal(true);
    expect(await refused(clientPort, param('alice', 'dd')), 'alice is disabled').to.equal(true);
    expect(proxy.output(), 'no secret in the logs').to.not.include(param('alice', 'plain'));
  });
});
