// Every parser of user input either returns a value or raises our own ConfigError, whatever it is
// given: a typo in a setting or a users file can never crash the proxy with a stray TypeError.
import { expect } from 'chai';
import fc from 'fast-check';
import {
  parseCidrs,
  parseConfig,
  parseDcOverrides,
  parseHostPort,
  parseSecretList,
  readRawSettings,
} from '../../../proxy/src/config/config.js';
import { ConfigError } from '../../../proxy/src/config/errors.js';
import { SETTINGS } from '../../../proxy/src/config/settings.js';
import { parseBytes, parseUsersFile } from '../../../proxy/src/users/users-file.js';

function onlyConfigErrors(run: () => unknown): void {
  try {
    run();
  } catch (err) {
    expect(err, String(err)).to.be.instanceOf(ConfigError);
  }
}

const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom(
    'users:',
    'users: []',
    'users: {a: 1}',
    '{"users": {"a": {"secret": 1e400}}}',
    'users: {a: {expires: 1}}',
  ),
);

describe('configuration parsers: any input parses or raises ConfigError', () => {
  it('parseUsersFile', () => {
    fc.assert(
      fc.property(text, (t) => onlyConfigErrors(() => parseUsersFile(t))),
      { numRuns: 500 },
    );
  });

  it('parseUsersFile on structured YAML with random values', () => {
    const value = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
    const user = fc.dictionary(
      fc.constantFrom(
        'secret',
        'enabled',
        'quota',
        'expires',
        'adTag',
        'maxConnections',
        'maxUniqueIps',
        'x',
      ),
      value,
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string(), user), (users) =>
        onlyConfigErrors(() => parseUsersFile(JSON.stringify({ users }))),
      ),
      { numRuns: 300 },
    );
  });

  it('parseBytes never throws', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.double(), fc.integer()), (v) => void parseBytes(v)));
  });

  it('secrets, DC overrides, host:port and CIDR lists', () => {
    fc.assert(
      fc.property(fc.string(), (v) => {
        onlyConfigErrors(() => parseSecretList('SECRET', v));
        onlyConfigErrors(() => parseDcOverrides('DC_ADDRS', v));
        onlyConfigErrors(() => parseHostPort('MASK_HOST', v));
        onlyConfigErrors(() => parseCidrs('STATS_ALLOW', v));
      }),
      { numRuns: 500 },
    );
  });

  it('the whole environment: any values for every setting', () => {
    const names = SETTINGS.filter((s) => s.kind === 'string').map((s) => s.env);
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...names), fc.string()), (env) =>
        onlyConfigErrors(() => parseConfig(readRawSettings(env, []), env)),
      ),
      { numRuns: 500 },
    );
  });
});
