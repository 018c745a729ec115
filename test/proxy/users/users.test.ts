import { expect } from 'chai';
import { UserRegistry } from '../../../proxy/src/users/user-registry.js';
import { parseBytes, parseUsersFile } from '../../../proxy/src/users/users-file.js';
import { thrownConfigError } from '../../support/config-error.js';

const A = '00112233445566778899aabbccddeeff';
const B = 'ffeeddccbbaa99887766554433221100';

function rejection(text: string): string {
  return thrownConfigError(() => parseUsersFile(text)).message;
}

describe('users file', () => {
  it('reads YAML with limits, units and dates', () => {
    const users = parseUsersFile(`
users:
  alice:
    secret: ${A.toUpperCase()}
    maxConnections: 10
    maxUniqueIps: 2
    uniqueIpWindowSeconds: 60
    quota: 10GiB
    expires: 2027-01-01T00:00:00Z
    adTag: ${B}
  bob:
    secret: ${B}
    enabled: false
`);
    expect(users.map((u) => u.name)).to.deep.equal(['alice', 'bob']);
    const alice = users[0]!;
    expect(alice.secret.toString('hex')).to.equal(A);
    expect(alice.limits).to.deep.equal({
      maxConnections: 10,
      maxUniqueIps: 2,
      uniqueIpWindowMs: 60_000,
      quotaBytes: 10 * 1024 ** 3,
      quotaPeriod: 'none',
      expiresAt: Date.parse('2027-01-01T00:00:00Z'),
    });
    expect(alice.adTag?.toString('hex')).to.equal(B);
    expect(users[1]!.enabled).to.equal(false);
  });

  it('keeps an unquoted all-digit secret as written (YAML would read it as a number)', () => {
    const users = parseUsersFile('users:\n  frank: { secret: 00000000111111112222222233333333 }\n');
    expect(users[0]!.secret.toString('hex')).to.equal('00000000111111112222222233333333');
  });

  it('reads the same from JSON', () => {
    const users = parseUsersFile(JSON.stringify({ users: { alice: { secret: A, quota: 1000 } } }));
    expect(users[0]!.limits.quotaBytes).to.equal(1000);
  });

  it('rejects the whole file and names every problem', () => {
    const msg = rejection(`
users:
  alice: { secret: nothex }
  bob: { secret: ${B}, maxConnections: -1, colour: blue }
  carol: { secret: ${B} }
`);
    expect(msg).to.match(/^USERS_FILE: rejected/);
    expect(msg).to.contain('user "alice": "secret" must be 32 hex digits');
    expect(msg).to.contain('user "bob": "maxConnections" must be a whole number above 0');
    expect(msg).to.contain('unknown key "colour"');
    expect(msg).to.contain('users "bob" and "carol" have the same secret');
    expect(msg).to.contain('Nothing from this file was applied');
    expect(msg).to.not.contain(B);
  });

  it('rejects broken syntax and a missing users mapping', () => {
    expect(rejection('users: [')).to.contain('not valid YAML');
    expect(rejection('people: {}')).to.contain('no "users:" mapping');
  });

  it('understands byte counts with units', () => {
    expect(parseBytes('500 MB')).to.equal(500e6);
    expect(parseBytes('1KiB')).to.equal(1024);
    expect(parseBytes(42)).to.equal(42);
    expect(parseBytes('lots')).to.equal(undefined);
    expect(parseBytes(-1)).to.equal(undefined);
  });
});

describe('per-pod user limits', () => {
  const file = (extra = '') =>
    parseUsersFile(`
users:
  alice: { secret: ${A}, maxConnections: 2, maxUniqueIps: 2, uniqueIpWindowSeconds: 60, quota: 1000 }
  bob: { secret: ${B}, expires: 2020-01-01T00:00:00Z }
${extra}`);

  it('refuses a user over its connection limit and admits again after a release', () => {
    const reg = new UserRegistry(file());
    expect(reg.admit('alice', '10.0.0.1')).to.equal(undefined);
    expect(reg.admit('alice', '10.0.0.1')).to.equal(undefined);
    expect(reg.admit('alice', '10.0.0.1')).to.equal('max-connections');
    reg.release('alice', '10.0.0.1');
    expect(reg.admit('alice', '10.0.0.1')).to.equal(undefined);
  });

  it('refuses a third client address within the window, and forgets addresses after it', () => {
    let now = 1_000_000;
    const reg = new UserRegistry(file(), new Map(), () => now);
    expect(reg.admit('alice', '10.0.0.1')).to.equal(undefined);
    reg.release('alice', '10.0.0.1');
    expect(reg.admit('alice', '10.0.0.2')).to.equal(undefined);
    reg.release('alice', '10.0.0.2');
    expect(reg.admit('alice', '10.0.0.3')).to.equal('max-unique-ips');
    expect(reg.admit('alice', '10.0.0.2'), 'a known address is fine').to.equal(undefined);
    reg.release('alice', '10.0.0.2');
    now += 61_000;
    expect(reg.admit('alice', '10.0.0.3')).to.equal(undefined);
  });

  it('refuses an expired user, and a user whose quota is used up', () => {
    const reg = new UserRegistry(file());
    expect(reg.admit('bob', '10.0.0.1')).to.equal('expired');
    expect(reg.addBytes('alice', 999)).to.equal(false);
    expect(reg.addBytes('alice', 1), 'the byte that reaches the quota').to.equal(true);
    expect(reg.addBytes('alice', 1), 'only reported once').to.equal(false);
    expect(reg.admit('alice', '10.0.0.1')).to.equal('quota');
  });

  it('keeps quota usage given at start (it is persisted by the caller)', () => {
    const reg = new UserRegistry(file(), new Map([['alice', 5000]]));
    expect(reg.admit('alice', '10.0.0.1')).to.equal('quota');
    expect(reg.usage().get('alice')).to.equal(5000);
  });

  it('on reload, names the users whose connections must close and keeps counting the others', () => {
    const reg = new UserRegistry(
      parseUsersFile(
        `users:\n  alice: { secret: ${A} }\n  bob: { secret: ${B} }\n  carol: { secret: 0123456789abcdef0123456789abcdef }`,
      ),
    );
    reg.admit('alice', '10.0.0.1');
    const close = reg.apply(
      parseUsersFile(
        `users:\n  alice: { secret: ${A} }\n  bob: { secret: ${B}, enabled: false }\n  dave: { secret: 0123456789abcdef0123456789abcdee }`,
      ),
    );
    expect(close.sort()).to.deep.equal(['bob', 'carol']);
    expect(reg.figures('alice')?.connections, 'unchanged user keeps its count').to.equal(1);
    expect(reg.admit('bob', '10.0.0.1')).to.equal('disabled');
    expect(reg.admit('carol', '10.0.0.1')).to.equal('unknown-user');
    expect(reg.admit('dave', '10.0.0.1')).to.equal(undefined);
  });
});
