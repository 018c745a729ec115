import { expect } from 'chai';
import { resolveSpec, SpecError, type UserSettings } from '../../../operator/src/api/defaults.js';
import type { MTProxy, MTProxySpec } from '../../../operator/src/api/types.js';
import { renderDeployment } from '../../../operator/src/render/deployment.js';
import type { EnvVar } from '../../../operator/src/render/env.js';
import {
  envSecretNames,
  LINKS_TEXT_KEY,
  renderLinks,
  renderLinksSecret,
  renderSecretsSecret,
} from '../../../operator/src/render/secrets.js';
import {
  planUserSecrets,
  readUserSecrets,
  renderUsersFile,
  renderUsersSecret,
  usersFromPlan,
  usersFromSecret,
  usersStatus,
} from '../../../operator/src/render/users.js';
import { parseUsersFile } from '../../../proxy/src/users/users-file.js';

const mtp: MTProxy = {
  apiVersion: 'mtkube.dev/v1alpha1',
  kind: 'MTProxy',
  metadata: { name: 'tg', namespace: 'proxies', uid: 'uid-1', generation: 1 },
};

const settings = (spec: MTProxySpec) => resolveSpec(spec, { defaultImage: 'example/proxy:1' });
const users = (spec: MTProxySpec): readonly UserSettings[] => settings(spec).users;

/** A deterministic random source: 0x01 x 16, 0x02 x 16, ... */
function counting() {
  let n = 0;
  return (size: number) => Buffer.alloc(size, ++n);
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('users: spec', () => {
  it('maps the CR fields to the users-file names and keeps quota as written', () => {
    const [u] = users({
      users: [
        { name: 'alice', maxUniqueIPs: 3, uniqueIPWindowSeconds: 60, quota: '50GiB', adTag: 'AB'.repeat(16) },
      ],
    });
    expect(u).to.deep.include({
      name: 'alice',
      enabled: true,
      maxUniqueIps: 3,
      uniqueIpWindowSeconds: 60,
      quota: '50GiB',
      adTag: 'ab'.repeat(16),
      secretRotation: 0,
    });
  });

  it('goes through the middle proxies when only a user has an ad tag, and tells the proxy so', () => {
    const spec: MTProxySpec = { users: [{ name: 'alice', adTag: 'ab'.repeat(16) }] };
    expect(settings(spec).effectiveMode).to.equal('middle');
    expect(env(spec).MODE?.value, "the proxy's auto looks only at TAG").to.equal('middle');
    expect(env({ users: [{ name: 'alice' }] }).MODE?.value).to.equal('auto');
  });

  it('rejects what the schema cannot check: an oversized quota, a reserved name, count 0 alone', () => {
    const problems = (spec: MTProxySpec): readonly string[] => {
      try {
        settings(spec);
        return [];
      } catch (err) {
        return (err as SpecError).problems;
      }
    };
    expect(problems({ users: [{ name: 'a', quota: '99999999999999TiB' }] })[0]).to.match(
      /spec\.users\[0\]\.quota/,
    );
    expect(problems({ users: [{ name: 'secret1' }] })[0]).to.match(/reserved/);
    expect(problems({ users: [{ name: 'a' }, { name: 'a' }] })[0]).to.match(/given twice/);
    expect(problems({ secrets: { count: 0 } })[0]).to.match(/serves nobody/);
    expect(problems({ secrets: { count: 0 }, users: [{ name: 'a' }] })).to.deep.equal([]);
    expect(() =>
      settings({ users: [{ name: 'a', adTag: 'ab'.repeat(16) }], upstream: { mode: 'direct' } }),
    ).to.throw(SpecError);
  });
});

describe('users: secrets', () => {
  const spec = (rotations: Record<string, number>): readonly UserSettings[] =>
    users({ users: Object.entries(rotations).map(([name, secretRotation]) => ({ name, secretRotation })) });

  it('gives each new user a fresh secret once, distinct from the others and from SECRET', () => {
    const reserved = ['01'.repeat(16)];
    const first = planUserSecrets({}, spec({ bob: 0, alice: 0 }), counting(), reserved);
    expect(first.generated).to.deep.equal(['alice', 'bob']);
    expect(first.secrets).to.deep.equal({
      alice: { secret: '02'.repeat(16), rotation: 0 },
      bob: { secret: '03'.repeat(16), rotation: 0 },
    });
    const again = planUserSecrets(first.secrets, spec({ alice: 0, bob: 0 }), counting());
    expect(again.secrets).to.deep.equal(first.secrets);
    expect(again.generated).to.deep.equal([]);
  });

  it('replaces only the secret of the user whose rotation rose, and never on a lower one', () => {
    const start = planUserSecrets({}, spec({ alice: 0, bob: 0 }), counting());
    const rotated = planUserSecrets(start.secrets, spec({ alice: 0, bob: 1 }), () => Buffer.alloc(16, 0xee));
    expect(rotated.rotated).to.deep.equal([{ name: 'bob', rotation: 1 }]);
    expect(rotated.secrets.alice).to.deep.equal(start.secrets.alice);
    expect(rotated.secrets.bob).to.deep.equal({ secret: 'ee'.repeat(16), rotation: 1 });
    const lower = planUserSecrets(rotated.secrets, spec({ alice: 0, bob: 0 }), counting());
    expect(lower.secrets).to.deep.equal(rotated.secrets);
  });

  it("drops a removed user's secret, so the name added again gets a new one", () => {
    const start = planUserSecrets({}, spec({ alice: 0, bob: 0 }), counting());
    const without = planUserSecrets(start.secrets, spec({ alice: 0 }), counting());
    expect(without.removed).to.deep.equal(['bob']);
    expect(Object.keys(without.secrets)).to.deep.equal(['alice']);
    const back = planUserSecrets(without.secrets, spec({ alice: 0, bob: 0 }), () => Buffer.alloc(16, 0x77));
    expect(back.secrets.bob?.secret).to.equal('77'.repeat(16));
  });

  it('keeps them in NAME-secrets next to the secrets of SECRET, and reads them back', () => {
    const plan = planUserSecrets({}, spec({ alice: 0 }), counting());
    const secret = renderSecretsSecret(mtp, 'tg-secrets', { env: undefined, users: plan.secrets }, true);
    expect(Object.keys(secret.data)).to.deep.equal(['users.json']);
    expect(readUserSecrets(secret.data)).to.deep.equal(plan.secrets);
    expect(readUserSecrets({})).to.deep.equal({});
    expect(readUserSecrets({ 'users.json': b64('{"alice":{"secret":"nope"}}') })).to.equal(undefined);
    expect(readUserSecrets({ 'users.json': b64('not json') })).to.equal(undefined);
  });

  it("takes secrets from the user's Secret by name, leaving out the missing, the malformed and the taken", () => {
    const list = users({
      users: [{ name: 'a' }, { name: 'b' }, { name: 'c' }, { name: 'd' }, { name: 'e' }],
    });
    const picked = usersFromSecret(
      {
        a: b64('AA'.repeat(16)),
        c: b64(`dd${'cc'.repeat(16)}`),
        d: b64(` ${'aa'.repeat(16)}\n`),
        e: b64('01'.repeat(16)),
      },
      list,
      ['01'.repeat(16)],
    );
    expect(picked.served.map((u) => `${u.settings.name} ${u.secret}`)).to.deep.equal([
      `a ${'aa'.repeat(16)}`,
    ]);
    expect(picked.left).to.deep.equal([
      { name: 'b', why: 'missing' },
      { name: 'c', why: 'invalid' },
      { name: 'd', why: 'duplicate' },
      { name: 'e', why: 'duplicate' },
    ]);
  });
});

describe('users: the rendered file', () => {
  const list = users({
    users: [
      {
        name: 'alice',
        maxConnections: 10,
        maxUniqueIPs: 3,
        uniqueIPWindowSeconds: 600,
        quota: '50GiB',
        expires: '2027-01-01T00:00:00Z',
      },
      { name: 'bob', enabled: false, quota: 1000, adTag: 'ab'.repeat(16) },
    ],
  });
  // An all-digit secret, which YAML would read as a number if written bare.
  const served = usersFromPlan(
    {
      alice: { secret: '12345678901234567890123456789012', rotation: 0 },
      bob: { secret: 'ff'.repeat(16), rotation: 2 },
    },
    list,
    [],
  ).served;

  it('is read by the proxy as written: secrets, limits, enabled and tags', () => {
    const parsed = parseUsersFile(renderUsersFile(served));
    expect(parsed.map((u) => [u.name, u.secret.toString('hex'), u.enabled])).to.deep.equal([
      ['alice', '12345678901234567890123456789012', true],
      ['bob', 'ff'.repeat(16), false],
    ]);
    expect(parsed[0]!.limits).to.deep.equal({
      maxConnections: 10,
      maxUniqueIps: 3,
      uniqueIpWindowMs: 600_000,
      quotaBytes: 50 * 1024 ** 3,
      quotaPeriod: 'none',
      expiresAt: Date.parse('2027-01-01T00:00:00Z'),
    });
    expect(parsed[1]!.limits.quotaBytes).to.equal(1000);
    expect(parsed[1]!.adTag?.toString('hex')).to.equal('ab'.repeat(16));
  });

  it('lives in NAME-users, owned by the MTProxy, under users.yaml', () => {
    const secret = renderUsersSecret(mtp, 'tg-users', served);
    expect(secret.metadata.ownerReferences?.[0]?.uid).to.equal('uid-1');
    expect(secret.metadata.labels).to.include({ 'mtkube.dev/mtproxy': 'tg' });
    expect(Buffer.from(secret.data['users.yaml']!, 'base64').toString()).to.equal(renderUsersFile(served));
  });

  it('is summed up in status without a secret', () => {
    const st = usersStatus(list, served.slice(0, 1));
    expect(st.map(({ fingerprint, ...rest }) => rest)).to.deep.equal([
      { name: 'alice', enabled: true, served: true, secretRotation: 0 },
      { name: 'bob', enabled: false, served: false },
    ]);
    expect(st[0]!.fingerprint).to.match(/^[0-9a-f]{12}$/);
    expect(JSON.stringify(st)).to.not.include('1234567890123456');
  });
});

describe('users: links', () => {
  it('labels each link with its user, and comments out a disabled one', () => {
    const s = settings({ modes: ['secure', 'classic'] });
    const links = renderLinks(
      s,
      [
        ...envSecretNames(['01'.repeat(16)]),
        { name: 'alice', secret: 'aa'.repeat(16), enabled: true },
        { name: 'bob', secret: 'bb'.repeat(16), enabled: false },
      ],
      'p.example.com',
      443,
    );
    expect(links.map((l) => `${l.user} ${l.form} ${l.enabled}`)).to.deep.equal([
      'secret1 dd true',
      'secret1 plain true',
      'alice dd true',
      'alice plain true',
      'bob dd false',
      'bob plain false',
    ]);
    const text = Buffer.from(
      renderLinksSecret(mtp, 'tg-links', links, { host: 'p.example.com', port: 443 }).data[LINKS_TEXT_KEY]!,
      'base64',
    ).toString();
    expect(text).to.include(
      `alice dd tg://proxy?server=p.example.com&port=443&secret=dd${'aa'.repeat(16)}\n`,
    );
    expect(text).to.include(
      `# disabled: bob plain https://t.me/proxy?server=p.example.com&port=443&secret=${'bb'.repeat(16)}\n`,
    );
  });
});

function deploy(spec: MTProxySpec, withUsers: boolean, withSecret = true) {
  return renderDeployment(mtp, 'tg', settings(spec), {
    secretsRef: withSecret ? { name: 'tg-secrets', key: 'secrets' } : undefined,
    usersSecretName: withUsers ? 'tg-users' : undefined,
    loadBalancerIP: undefined,
    secretsChecksum: 'abc',
    restartedAt: undefined,
  });
}

function env(spec: MTProxySpec, withUsers = true, withSecret = true): Record<string, EnvVar> {
  const containers = deploy(spec, withUsers, withSecret).spec.template.spec.containers as { env: EnvVar[] }[];
  return Object.fromEntries(containers[0]!.env.map((e) => [e.name, e]));
}

describe('users: the Deployment', () => {
  it('mounts the users Secret as a directory, read-only, and points USERS_FILE at it', () => {
    const pod = deploy({ users: [{ name: 'a' }] }, true).spec.template.spec as {
      containers: { volumeMounts: unknown[] }[];
      volumes: unknown[];
    };
    expect(pod.containers[0]!.volumeMounts).to.deep.include({
      name: 'users',
      mountPath: '/etc/mtkube/users',
      readOnly: true,
    });
    expect(pod.volumes).to.deep.include({
      name: 'users',
      secret: {
        secretName: 'tg-users',
        items: [{ key: 'users.yaml', path: 'users.yaml' }],
        defaultMode: 0o440,
      },
    });
    expect(env({ users: [{ name: 'a' }] }).USERS_FILE?.value).to.equal('/etc/mtkube/users/users.yaml');
  });

  it('has neither without users, and no SECRET when only named users are served', () => {
    expect(env({}, false)).to.not.have.property('USERS_FILE');
    expect(JSON.stringify(deploy({}, false).spec.template.spec)).to.not.include('tg-users');
    expect(env({ secrets: { count: 0 }, users: [{ name: 'a' }] }, true, false)).to.not.have.property(
      'SECRET',
    );
  });
});
