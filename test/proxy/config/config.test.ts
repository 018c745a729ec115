import { expect } from 'chai';
import { parseConfig, readRawSettings } from '../../../proxy/src/config/config.js';
import type { ConfigError } from '../../../proxy/src/config/errors.js';
import { helpText, SETTINGS } from '../../../proxy/src/config/settings.js';
import { thrownConfigError } from '../../support/config-error.js';

const config = (env: Record<string, string>, argv: string[] = []) =>
  parseConfig(readRawSettings(env, argv), env);

function configError(env: Record<string, string>, argv: string[] = []): ConfigError {
  return thrownConfigError(() => config(env, argv));
}

describe('configuration from environment and flags', () => {
  it('starts with no configuration at all, with the documented defaults', () => {
    const c = config({});
    expect(c.secrets).to.equal(undefined);
    expect(c.secretCount).to.equal(1);
    expect(c.workers).to.equal(2);
    expect(c.maxConnections).to.equal(60000);
    expect(c.port).to.equal(443);
    expect(c.publicPort).to.equal(443);
    expect(c.bind).to.equal(undefined);
    expect(c.tag).to.equal(undefined);
    expect(c.banner).to.equal(true);
  });

  it('accepts up to 16 secrets in any case and keeps them lower-case', () => {
    const secrets = Array.from(
      { length: 16 },
      (_, i) => `${i.toString(16).padStart(2, '0')}AABBCCDDEEFF001122334455667788`,
    );
    const c = config({ SECRET: secrets.join(',') });
    expect(c.secrets).to.have.length(16);
    expect(c.secrets![0]!.bytes.toString('hex')).to.equal(secrets[0]!.toLowerCase());
    expect(c.secrets!.map((s) => s.name)).to.include.members(['secret1', 'secret16']);
  });

  it('refuses a 17th secret, naming the variable', () => {
    const secrets = Array.from({ length: 17 }, (_, i) => i.toString(16).padStart(32, '0'));
    const err = configError({ SECRET: secrets.join(',') });
    expect(err.variable).to.equal('SECRET');
    expect(err.message).to.contain('At most 16');
  });

  it('names the bad SECRET entry and the expected form, without echoing a near-secret whole', () => {
    const err = configError({
      SECRET: '00112233445566778899aabbccddeeff,dd00112233445566778899aabbccddeeff',
    });
    expect(err.message).to.match(/^SECRET: entry 2/);
    expect(err.message).to.contain('32 hex digits');
    expect(err.message).to.contain('dd or ee prefix');
    expect(err.message).to.not.contain('00112233445566778899aabbccddeeff');
  });

  it('refuses duplicate secrets', () => {
    const s = '00112233445566778899aabbccddeeff';
    expect(configError({ SECRET: `${s},${s.toUpperCase()}` }).message).to.contain('repeats');
  });

  it('accepts HTTP_PORT as the official image does, and a flag wins over the environment', () => {
    expect(config({ HTTP_PORT: '8443' }).port).to.equal(8443);
    expect(config({ PORT: '1000' }, ['--port', '2000']).port).to.equal(2000);
  });

  for (const [variable, value] of [
    ['SECRET_COUNT', '17'],
    ['SECRET_COUNT', '0'],
    ['WORKERS', 'two'],
    ['MAX_CONNECTIONS', '0'],
    ['PORT', '70000'],
    ['TAG', 'xyz'],
    ['EXTERNAL_IP', '1.2.3'],
    ['BIND', 'localhost'],
    ['DC_ADDRS', '2=nowhere'],
    ['DC_ADDRS', '0=127.0.0.1:1'],
    ['HANDSHAKE_TIMEOUT', '-1'],
    ['BANNER', 'maybe'],
  ] as const) {
    it(`refuses ${variable}=${value} with an error naming ${variable}`, () => {
      expect(configError({ [variable]: value }).variable).to.equal(variable);
    });
  }

  it('reads a DC address table override with IPv6 and media DCs', () => {
    const c = config({ DC_ADDRS: '1=127.0.0.1:7001, 2=127.0.0.1:7002,-2=[::1]:7003' });
    expect(c.dcOverrides.get(1)).to.deep.equal([{ host: '127.0.0.1', port: 7001 }]);
    expect(c.dcOverrides.get(-2)).to.deep.equal([{ host: '::1', port: 7003 }]);
  });

  it('rejects unknown flags with a pointer to --help', () => {
    expect(configError({}, ['--no-such-flag']).message).to.contain('--help');
  });

  it('documents every setting in --help', () => {
    const help = helpText();
    for (const s of SETTINGS) expect(help).to.contain(`--${s.flag}`);
  });
});
