import { expect } from 'chai';
import fc from 'fast-check';
import { type ClientSecret, formatSecretParam, proxyLinks } from '../../../proxy/src/config/links.js';
import { ProtocolError } from '../../../proxy/src/protocol/errors.js';
import { parseSecretParam } from '../../support/secret-param-reader.js';
import { hex, loadVectors } from '../../support/vectors.js';

interface LinkRow {
  name: string;
  server: string;
  port: number;
  secret_16: string;
  domain: string | null;
  secret_param: string;
  tg_link: string;
  tme_link: string;
  decoded_secret_bytes: string;
}

const rows = loadVectors<{ vectors: LinkRow[] }>('links.json').vectors;

function secretOf(row: LinkRow): ClientSecret {
  const key = hex(row.secret_16);
  if (row.domain !== null) return { kind: 'ee', key, domain: row.domain };
  return row.name.endsWith('_dd') ? { kind: 'dd', key } : { kind: 'plain', key };
}

describe('proxy links (vectors, §1)', () => {
  for (const row of rows) {
    it(`${row.name}: the operator's secret becomes the link the user shares`, () => {
      const encoding = row.name.endsWith('_base64url') ? 'base64url' : 'hex';
      const param = formatSecretParam(secretOf(row), encoding);
      expect(param).to.equal(row.secret_param);
      const links = proxyLinks(row.server, row.port, param);
      expect(links.tg).to.equal(row.tg_link);
      expect(links.tme).to.equal(row.tme_link);
    });

    it(`${row.name}: the secret parameter decodes to the client's bytes and form`, () => {
      const parsed = parseSecretParam(row.secret_param);
      expect(parsed.bytes.toString('hex')).to.equal(row.decoded_secret_bytes);
      expect(parsed.key.toString('hex')).to.equal(row.secret_16);
      const expected = secretOf(row);
      expect(parsed.kind).to.equal(expected.kind);
      expect(parsed.kind === 'ee' ? parsed.domain : null).to.equal(row.domain);
    });
  }

  it('reads upper-case hex as hex', () => {
    const parsed = parseSecretParam('DD00112233445566778899AABBCCDDEEFF');
    expect(parsed.kind).to.equal('dd');
    expect(parsed.key.toString('hex')).to.equal('00112233445566778899aabbccddeeff');
  });

  it('refuses secrets a client would not accept', () => {
    const bad = [
      '', // nothing
      '00112233445566778899aabbccddee', // 15 bytes
      'cc00112233445566778899aabbccddeeff', // 17 bytes without dd
      'ee00112233445566778899aabbccddeeff', // ee without a domain
      'ee00112233445566778899aabbccddeeff2d2d', // domain "--"
      'ee00112233445566778899aabbccddeeff61ff62', // domain with a non-ASCII byte
      '7gARIjNEVWZ3iJmqu8zd7v9leGFtcGxlLmNvbQ==', // padded base64url
      '7gARIjNEVWZ3iJmqu8zd7v9leGFtcGxlLmNvbR', // non-canonical trailing bits
      '+gARIjNEVWZ3iJmqu8zd7v9leGFtcGxlLmNvbQ', // standard base64 alphabet
      'dd00112233445566778899aabbccddeeff junk', // garbage appended
    ];
    for (const s of bad) expect(() => parseSecretParam(s), s).to.throw(ProtocolError);
  });

  it('refuses to build a link a client would misread: bad key, bad domain, base64url without ee', () => {
    // 16 zero bytes in base64url are 22 'A's, which any client would read as hex.
    expect(() => formatSecretParam({ kind: 'plain', key: Buffer.alloc(16) }, 'base64url')).to.throw(
      ProtocolError,
    );
    expect(() => formatSecretParam({ kind: 'plain', key: Buffer.alloc(15) })).to.throw(ProtocolError);
    expect(() => formatSecretParam({ kind: 'ee', key: Buffer.alloc(16), domain: 'a b' })).to.throw(
      ProtocolError,
    );
    expect(() => formatSecretParam({ kind: 'ee', key: Buffer.alloc(16), domain: 'a'.repeat(183) })).to.throw(
      ProtocolError,
    );
  });
});

describe('proxy links (properties)', () => {
  const key = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a));
  const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?$/);
  const domain = fc
    .array(label, { minLength: 1, maxLength: 4 })
    .map((labels) => labels.join('.'))
    .filter((d) => d.length <= 182);
  const secret: fc.Arbitrary<ClientSecret> = fc.oneof(
    key.map((k) => ({ kind: 'plain' as const, key: k })),
    key.map((k) => ({ kind: 'dd' as const, key: k })),
    fc.record({ kind: fc.constant('ee' as const), key, domain }),
  );

  it('every secret a user is given parses back to the same key, form and domain', () => {
    fc.assert(
      fc.property(secret, fc.constantFrom('hex' as const, 'base64url' as const), (s, wanted) => {
        const encoding = s.kind === 'ee' ? wanted : 'hex';
        const param = formatSecretParam(s, encoding);
        const link = new URL(proxyLinks('proxy.example.net', 443, param).tme);
        const parsed = parseSecretParam(link.searchParams.get('secret')!);
        expect(parsed.kind).to.equal(s.kind);
        expect(parsed.key.equals(s.key)).to.equal(true);
        if (s.kind === 'ee' && parsed.kind === 'ee') expect(parsed.domain).to.equal(s.domain);
      }),
      { numRuns: 300 },
    );
  });
});
