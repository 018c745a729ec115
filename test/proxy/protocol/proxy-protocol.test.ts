import { isIP } from 'node:net';
import { expect } from 'chai';
import fc from 'fast-check';
import { ProtocolError } from '../../../proxy/src/protocol/errors.js';
import {
  MAX_PROXY_HEADER,
  type ProxyHeaderResult,
  type ProxyProtocolMode,
  parseProxyHeader,
  V2_MAX_PAYLOAD,
} from '../../../proxy/src/protocol/proxy-protocol.js';
import { formatProxyHeaderV1, formatProxyHeaderV2 } from '../../support/proxy-protocol-sender.js';

const CLIENT_BYTES = Buffer.from([0xef, 0x01, 0x02, 0x03]);

function errorCode(bytes: Buffer, mode: ProxyProtocolMode): string {
  try {
    parseProxyHeader(bytes, mode);
  } catch (err) {
    expect(err).to.be.instanceOf(ProtocolError);
    return (err as ProtocolError).code;
  }
  throw new Error('expected a ProtocolError');
}

function header(result: ProxyHeaderResult): Extract<ProxyHeaderResult, { kind: 'header' }> {
  expect(result.kind).to.equal('header');
  return result as Extract<ProxyHeaderResult, { kind: 'header' }>;
}

describe('PROXY protocol header', () => {
  it('reads a v1 TCP4 line from a load balancer and points at the client bytes after it', () => {
    const line = Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.5 51234 443\r\n');
    const h = header(parseProxyHeader(Buffer.concat([line, CLIENT_BYTES]), 'v1'));
    expect(h.version).to.equal(1);
    expect(h.source).to.deep.equal({ address: '203.0.113.7', port: 51234 });
    expect(h.destination).to.deep.equal({ address: '10.0.0.5', port: 443 });
    expect(h.consumed).to.equal(line.length);
  });

  it('reads v1 TCP6 and UNKNOWN lines', () => {
    const v6 = header(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 ::1 4000 443\r\n'), 'auto'));
    expect(v6.source).to.deep.equal({ address: '2001:db8::1', port: 4000 });
    const unknown = header(parseProxyHeader(Buffer.from('PROXY UNKNOWN whatever\r\n'), 'v1'));
    expect(unknown.source).to.equal(undefined);
  });

  it('refuses malformed v1 lines', () => {
    const cases: [string, string][] = [
      ['PROXY TCP4 203.0.113.7 10.0.0.5 51234 443\n', 'ERR_PROXY_V1_CRLF'],
      ['PROXY TCP4 2001:db8::1 10.0.0.5 1 2\r\n', 'ERR_PROXY_V1_ADDRESS'],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n', 'ERR_PROXY_V1_PORT'],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 01 1\r\n', 'ERR_PROXY_V1_PORT'],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', 'ERR_PROXY_V1_FIELDS'],
      ['PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n', 'ERR_PROXY_V1_FIELDS'],
      [`PROXY TCP4 ${'1'.repeat(120)}`, 'ERR_PROXY_V1_LENGTH'],
    ];
    for (const [text, code] of cases) expect(errorCode(Buffer.from(text), 'v1'), text).to.equal(code);
  });

  it('reads v2 IPv4 and IPv6 headers, skipping TLVs', () => {
    const tlvs = Buffer.from([0x04, 0x00, 0x03, 0x61, 0x62, 0x63]);
    const v4 = formatProxyHeaderV2(
      { address: '198.51.100.9', port: 40000 },
      { address: '10.1.2.3', port: 443 },
      tlvs,
    );
    const h4 = header(parseProxyHeader(Buffer.concat([v4, CLIENT_BYTES]), 'v2'));
    expect(h4.version).to.equal(2);
    expect(h4.source).to.deep.equal({ address: '198.51.100.9', port: 40000 });
    expect(h4.destination).to.deep.equal({ address: '10.1.2.3', port: 443 });
    expect(h4.consumed).to.equal(v4.length);
    const v6 = formatProxyHeaderV2({ address: '2001:db8:0:0:1::5', port: 1 }, { address: '::1', port: 2 });
    const h6 = header(parseProxyHeader(v6, 'auto'));
    expect(h6.source).to.deep.equal({ address: '2001:db8::1:0:0:5', port: 1 });
    expect(h6.destination).to.deep.equal({ address: '::1', port: 2 });
  });

  it('a v2 LOCAL header (a health check) carries no client address', () => {
    const h = header(parseProxyHeader(formatProxyHeaderV2(undefined, undefined), 'v2'));
    expect(h.source).to.equal(undefined);
    expect(h.consumed).to.equal(16);
  });

  it('refuses malformed v2 headers', () => {
    const good = formatProxyHeaderV2({ address: '1.2.3.4', port: 1 }, { address: '5.6.7.8', port: 2 });
    const badVersion = Buffer.from(good);
    badVersion[12] = 0x11;
    const badCommand = Buffer.from(good);
    badCommand[12] = 0x2f;
    const short = Buffer.from(good.subarray(0, 16 + 8));
    short.writeUInt16BE(8, 14);
    const long = Buffer.from(good);
    long.writeUInt16BE(V2_MAX_PAYLOAD + 1, 14);
    expect(errorCode(badVersion, 'v2')).to.equal('ERR_PROXY_V2_VERSION');
    expect(errorCode(badCommand, 'v2')).to.equal('ERR_PROXY_V2_COMMAND');
    expect(errorCode(short, 'v2')).to.equal('ERR_PROXY_V2_LENGTH');
    expect(errorCode(long, 'v2')).to.equal('ERR_PROXY_V2_LENGTH');
  });

  it('in v1 or v2 mode a connection without that header is refused; auto lets it through untouched', () => {
    const tlsHello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]);
    expect(errorCode(tlsHello, 'v1')).to.equal('ERR_PROXY_HEADER_MISSING');
    expect(errorCode(tlsHello, 'v2')).to.equal('ERR_PROXY_HEADER_MISSING');
    expect(
      errorCode(formatProxyHeaderV1({ address: '1.2.3.4', port: 1 }, { address: '1.2.3.4', port: 2 }), 'v2'),
    ).to.equal('ERR_PROXY_HEADER_MISSING');
    expect(parseProxyHeader(tlsHello, 'auto').kind).to.equal('none');
    expect(parseProxyHeader(Buffer.from('POST / HTTP/1.1\r\n'), 'auto').kind).to.equal('none');
  });

  it('asks for more bytes at every cut of a header, however it is split', () => {
    const v1 = formatProxyHeaderV1({ address: '192.0.2.1', port: 5 }, { address: '192.0.2.2', port: 6 });
    const v2 = formatProxyHeaderV2({ address: '192.0.2.1', port: 5 }, { address: '192.0.2.2', port: 6 });
    for (const [h, mode] of [
      [v1, 'v1'],
      [v1, 'auto'],
      [v2, 'v2'],
      [v2, 'auto'],
    ] as const) {
      for (let cut = 0; cut < h.length; cut++) {
        expect(parseProxyHeader(h.subarray(0, cut), mode).kind, `${mode} cut ${cut}`).to.equal('need-more');
      }
      expect(header(parseProxyHeader(h, mode)).consumed).to.equal(h.length);
    }
  });

  describe('properties', () => {
    const modes = fc.constantFrom<ProxyProtocolMode>('v1', 'v2', 'auto');

    it('any bytes either parse or raise ProtocolError, and never ask for more than MAX_PROXY_HEADER', () => {
      const prefixed = fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.concat([Buffer.from('PROXY '), b])),
        fc
          .uint8Array({ maxLength: 200 })
          .map((b) => Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540a', 'hex'), b])),
      );
      fc.assert(
        fc.property(prefixed, modes, (bytes, mode) => {
          const buf = Buffer.from(bytes);
          try {
            const r = parseProxyHeader(buf, mode);
            if (r.kind === 'header') expect(r.consumed).to.be.at.most(Math.min(buf.length, MAX_PROXY_HEADER));
            if (r.kind === 'need-more') expect(buf.length).to.be.below(MAX_PROXY_HEADER);
            if (r.kind === 'header' && r.source) expect(isIP(r.source.address)).to.not.equal(0);
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err;
          }
        }),
        { numRuns: 2000 },
      );
    });

    it('a header made by a balancer reads back the same addresses, followed by any client bytes', () => {
      const v4 = fc.ipV4();
      const v6 = fc.ipV6().filter((a) => !a.includes('.'));
      const port = fc.integer({ min: 0, max: 65535 });
      const pair = fc.oneof(fc.tuple(v4, v4), fc.tuple(v6, v6));
      fc.assert(
        fc.property(
          pair,
          port,
          port,
          fc.boolean(),
          fc.uint8Array({ maxLength: 64 }),
          ([src, dst], sp, dp, useV2, tail) => {
            const source = { address: src, port: sp };
            const destination = { address: dst, port: dp };
            const h = useV2
              ? formatProxyHeaderV2(source, destination)
              : formatProxyHeaderV1(source, destination);
            const r = header(parseProxyHeader(Buffer.concat([h, tail]), 'auto'));
            expect(r.consumed).to.equal(h.length);
            expect(normalize(r.source!.address)).to.equal(normalize(src));
            expect(r.source!.port).to.equal(sp);
            expect(normalize(r.destination!.address)).to.equal(normalize(dst));
          },
        ),
        { numRuns: 500 },
      );
    });
  });
});

/** Canonical text of an IP address, to compare two spellings. */
function normalize(address: string): string {
  if (isIP(address) !== 6) return address;
  return new URL(`http://[${address}]/`).hostname;
}
