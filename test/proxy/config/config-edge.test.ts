import { expect } from 'chai';
import { parseConfig, readRawSettings } from '../../../proxy/src/config/config.js';
import { thrownConfigError } from '../../support/config-error.js';

const config = (env: Record<string, string>) => parseConfig(readRawSettings(env, []), env);

function problem(env: Record<string, string>): string {
  return thrownConfigError(() => config(env)).message;
}

describe('configuration of fake TLS, masking and the edge', () => {
  it('without a fake-TLS domain: classic and secure, no masking, no PROXY protocol, 500 connections per IP', () => {
    const c = config({});
    expect([...c.modes]).to.deep.equal(['classic', 'secure']);
    expect(c.fakeTlsDomains).to.deep.equal([]);
    expect(c.mask).to.equal(undefined);
    expect(c.proxyProtocol).to.equal('off');
    expect(c.maxConnectionsPerIp).to.equal(500);
    expect(c.failedHandshakeRate).to.equal(10);
    expect(c.maxUnidentifiedHandshakes).to.equal(2048);
    expect(c.metricsAllow).to.include('10.0.0.0/8').and.include('127.0.0.0/8');
    expect(c.tlsClockSkewSeconds).to.equal(600);
    expect(c.replayWindowMs).to.equal(172_800_000);
  });

  it('with FAKE_TLS_DOMAIN: only tls, masking to the first domain on 443, unknown SNI masked', () => {
    const c = config({ FAKE_TLS_DOMAIN: 'Example.COM, www.example.com' });
    expect(c.fakeTlsDomains).to.deep.equal(['example.com', 'www.example.com']);
    expect([...c.modes]).to.deep.equal(['tls']);
    expect(c.unknownSni).to.equal('mask');
    expect(c.mask).to.deep.equal({
      host: 'example.com',
      port: 443,
      maxBytes: 16_777_216,
      timeoutMs: 60_000,
      maxRelays: 1024,
    });
  });

  it('MASK_HOST and MASK_PORT replace the default target; MASK=off turns masking off', () => {
    const env = {
      FAKE_TLS_DOMAIN: 'example.com',
      MASK_HOST: '127.0.0.1',
      MASK_PORT: '8443',
      MASK_TIMEOUT: '5',
    };
    expect(config(env).mask).to.include({ host: '127.0.0.1', port: 8443, timeoutMs: 5000 });
    expect(config({ ...env, MASK: 'off' }).mask).to.equal(undefined);
    expect(config({ MASK_HOST: 'site.example' }).mask?.host, 'masking plain obfuscated2 too').to.equal(
      'site.example',
    );
  });

  it('names the variable and the fix for every mistake', () => {
    expect(problem({ MODES: 'tls' })).to.match(/^MODES: tls needs a fake-TLS domain/);
    expect(problem({ MODES: 'fast' })).to.match(/^MODES: "fast" is not a mode/);
    expect(problem({ FAKE_TLS_DOMAIN: 'exa mple.com' })).to.match(/^FAKE_TLS_DOMAIN: /);
    expect(problem({ UNKNOWN_SNI: 'ignore' })).to.match(/^UNKNOWN_SNI: /);
    expect(problem({ PROXY_PROTOCOL: 'v3' })).to.match(/^PROXY_PROTOCOL: /);
    expect(problem({ MASK_HOST: 'a.example:443' })).to.match(/^MASK_HOST: .*without a port/);
    expect(problem({ TLS_CLOCK_SKEW: '600', REPLAY_WINDOW: '900' })).to.match(
      /^REPLAY_WINDOW: .*twice TLS_CLOCK_SKEW/,
    );
    expect(problem({ MAX_CONNECTIONS_PER_IP: '-1' })).to.match(/^MAX_CONNECTIONS_PER_IP: /);
  });
});
