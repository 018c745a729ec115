import { expect } from 'chai';
import {
  type ProxyConfigError,
  parseProxyConfig,
  targetsForDc,
} from '../../../proxy/src/middle/codec/proxy-config.js';
import { ProtocolError } from '../../../proxy/src/protocol/errors.js';
import { loadVectors } from '../../support/vectors.js';

interface ConfigVector {
  name: string;
  body: string;
  expected_default: number;
  expected_targets: Record<string, [string, number][]>;
}

const file = loadVectors<{ vectors: ConfigVector[] }>('proxy_config.json');

function refusal(text: string): ProxyConfigError {
  try {
    parseProxyConfig(text);
  } catch (error) {
    expect(error).to.be.instanceOf(ProtocolError);
    return error as ProxyConfigError;
  }
  return expect.fail(`accepted: ${JSON.stringify(text)}`);
}

describe("Telegram's middle-proxy list (proxy_config.json)", () => {
  for (const v of file.vectors) {
    it(`${v.name}: default cluster and every target in file order`, () => {
      const config = parseProxyConfig(v.body);
      expect(config.defaultDc).to.equal(v.expected_default);
      const got = Object.fromEntries(
        [...config.targets].map(([id, list]) => [id, list.map((t) => [t.host, t.port])]),
      );
      expect(got).to.deep.equal(v.expected_targets);
    });
  }

  it('a DC without its own line goes to the default cluster', () => {
    const v = file.vectors[0]!;
    const config = parseProxyConfig(v.body);
    expect(targetsForDc(config, 10002)).to.equal(config.targets.get(v.expected_default));
    expect(targetsForDc(config, -4)).to.equal(config.targets.get(-4));
  });

  it('with no default and no cluster 0, an unknown DC has no target', () => {
    const config = parseProxyConfig('proxy_for 2 192.0.2.1:8888;');
    expect(config.defaultDc).to.equal(0);
    expect(targetsForDc(config, 7)).to.equal(undefined);
  });

  it('reads `proxy` as cluster 0, the connection settings, comments and CRLF', () => {
    const text = [
      '# a comment',
      'timeout 5000;  # trailing comment',
      'max_connections 16;',
      'min_connections 2;',
      'proxy example.org:443;',
      'proxy [2001:db8::1]:80;',
      'proxy_for\t-3   192.0.2.7 : 8888 ;',
    ].join('\r\n');
    const config = parseProxyConfig(text);
    expect(config.timeoutMs).to.equal(5000);
    expect(config.minConnections).to.equal(2);
    expect(config.maxConnections).to.equal(16);
    expect(config.targets.get(0)).to.deep.equal([
      { host: 'example.org', port: 443 },
      { host: '2001:db8::1', port: 80 },
    ]);
    expect(config.targets.get(-3)).to.deep.equal([{ host: '192.0.2.7', port: 8888 }]);
  });

  it('uses the official connection defaults when the list sets none', () => {
    const config = parseProxyConfig('proxy_for 1 192.0.2.1:8888;');
    expect(config).to.deep.include({ timeoutMs: 300, minConnections: 4, maxConnections: 8 });
  });

  it('refuses lines of one DC that are not consecutive, naming the line', () => {
    const e = refusal(
      'proxy_for 1 192.0.2.1:8888;\nproxy_for 2 192.0.2.2:8888;\nproxy_for 1 192.0.2.3:8888;\n',
    );
    expect(e.code).to.equal('ERR_MP_CONFIG');
    expect(e.line).to.equal(3);
    expect(e.message).to.match(/^proxy config line 3: .*intermixed/);
  });

  it('refuses a list without any proxy line', () => {
    expect(refusal('# nothing here\ndefault 2;\n').message).to.include('no proxy_for lines');
    expect(refusal('').message).to.include('no proxy_for lines');
  });

  const malformed: [string, string][] = [
    ['missing semicolon', 'proxy_for 1 192.0.2.1:8888\nproxy_for 2 192.0.2.2:8888;'],
    ['missing port', 'proxy_for 1 192.0.2.1;'],
    ['port 0', 'proxy_for 1 192.0.2.1:0;'],
    ['port above 65535', 'proxy_for 1 192.0.2.1:65536;'],
    ['id out of int16', 'proxy_for 40000 192.0.2.1:8888;'],
    ['id not a number', 'proxy_for x 192.0.2.1:8888;'],
    ['unknown statement', 'proxy_for 1 192.0.2.1:8888; frobnicate 3;'],
    ['bad IPv4', 'proxy_for 1 192.0.2.300:8888;'],
    ['bad IPv6 in brackets', 'proxy_for 1 [2001:db8:::1]:8888;'],
    ['IPv6 without brackets', 'proxy_for 1 2001:db8::1:8888;'],
    ['host name too long', `proxy_for 1 ${'a'.repeat(64)}:8888;`],
    ['timeout below 10 ms', 'timeout 5; proxy_for 1 192.0.2.1:8888;'],
    ['min above max', 'min_connections 9; proxy_for 1 192.0.2.1:8888;'],
    ['max below min', 'max_connections 3; proxy_for 1 192.0.2.1:8888;'],
    ['max above 1000', 'max_connections 1001; proxy_for 1 192.0.2.1:8888;'],
    ['stray character', 'proxy_for 1 192.0.2.1:8888; !'],
    ['a NUL byte', 'proxy_for 1 192.0.2.1:8888;\0'],
  ];
  for (const [what, text] of malformed) {
    it(`rejects the whole list on ${what}`, () => {
      expect(refusal(text).code).to.equal('ERR_MP_CONFIG');
    });
  }
});
