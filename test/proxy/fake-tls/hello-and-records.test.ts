import { createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  buildClientHello,
  CLIENT_MAX_RECORD_PAYLOAD,
  splitHelloRecords,
  verifyServerHello,
} from '../../../proxy/src/fake-tls/client.js';
import {
  type ClockWindow,
  detectClientHello,
  type HelloPolicy,
  type HelloVerdict,
  MAX_HELLO_BUFFER,
  MAX_HELLO_RECORDS,
  validateClientHello,
} from '../../../proxy/src/fake-tls/client-hello.js';
import { CHANGE_CIPHER_SPEC, TlsRecordReader, wrapRecords } from '../../../proxy/src/fake-tls/records.js';
import {
  buildServerHello,
  randomPayloadLength,
  serverHelloMac,
} from '../../../proxy/src/fake-tls/server-hello.js';
import { ProtocolError } from '../../../proxy/src/protocol/errors.js';
import { ctrCipher, parseClientHeader } from '../../../proxy/src/protocol/obfuscated2.js';
import { resign, seededRandom } from '../../support/test-bytes.js';
import { hex, loadVectors } from '../../support/vectors.js';

interface AcceptedVector {
  name: string;
  secret: string;
  domain: string;
  server_now: number;
  client_hello: string;
  client_random: string;
  decoded_timestamp: number;
  session_id: string;
  server_response: string;
  server_response_random_zeroed: string;
  server_random: string;
  server_response_layout: {
    app_data_record_offset: number;
    app_data_payload_len: number;
    x25519_key_share: string;
  };
  client_followup_stream: string;
  inner_obfuscated2: {
    header_on_wire: string;
    dc: number;
    proxy_decrypt_key: string;
    proxy_decrypt_iv: string;
    proxy_encrypt_key: string;
    proxy_encrypt_iv: string;
    c2p_plain: string;
  };
  p2c_plain: string;
  p2c_tls_records: string;
}
interface HelloRow {
  name: string;
  client_hello: string;
  client_timestamp?: number;
  server_now?: number;
}
interface FakeTlsFile {
  vectors: AcceptedVector[];
  negative: HelloRow[];
  policy_dependent: HelloRow[];
  meta: { server_now: number };
}

const file = loadVectors<FakeTlsFile>('fake_tls.json');
const o2File = loadVectors<{ vectors: { header_on_wire: string }[] }>('obfuscated2_client.json');
const alice = hex('00112233445566778899aabbccddeeff');
const bob = hex('ffeeddccbbaa99887766554433221100');
const serverNow = file.meta.server_now;
// The proxy under test knows bob first, so alice's hellos must be found at index 1.
const policy: HelloPolicy = { secrets: [bob, alice], domains: ['example.com'], now: () => serverNow };
const negative = (name: string) => hex(file.negative.find((n) => n.name === name)!.client_hello);
const policyRow = (name: string) => hex(file.policy_dependent.find((n) => n.name === name)!.client_hello);

/** Deterministic stand-in for crypto.randomBytes. */
/** Feeds `bytes` to the detector the way a socket would deliver them, in pieces of `sizes`. */
function detectInPieces(bytes: Buffer, sizes: number[]) {
  let received = Buffer.alloc(0);
  const asked: number[] = [];
  for (let i = 0; received.length < bytes.length; i++) {
    const size = Math.max(1, sizes[i % sizes.length]!);
    received = Buffer.concat([received, bytes.subarray(received.length, received.length + size)]);
    const d = detectClientHello(received);
    if (d.kind !== 'need-more') return { result: d, asked };
    expect(d.atLeast).to.be.greaterThan(received.length);
    asked.push(d.atLeast);
  }
  return { result: detectClientHello(received), asked };
}

function expectRefused(v: HelloVerdict, reason: string): void {
  expect(v.ok, 'refused').to.equal(false);
  if (!v.ok) expect(v.reason).to.equal(reason);
}

describe('fake TLS: a client says hello (vectors)', () => {
  for (const v of file.vectors) {
    const hello = hex(v.client_hello);

    it(`${v.name}: the proxy finds the whole hello in one read, nothing left over`, () => {
      const d = detectClientHello(hello);
      expect(d.kind).to.equal('hello');
      if (d.kind !== 'hello') return;
      expect(d.hello.toString('hex')).to.equal(v.client_hello);
      expect(d.records).to.equal(1);
      expect(d.consumed).to.equal(hello.length);
      expect(d.rest.length).to.equal(0);
    });

    it(`${v.name}: a hello trickling in byte by byte is waited for, never guessed at 517 bytes`, () => {
      const { result, asked } = detectInPieces(hello, [1]);
      expect(result.kind).to.equal('hello');
      expect(asked.length).to.equal(hello.length - 1);
      for (const n of asked) expect(n).to.be.at.most(hello.length);
      // Once the handshake header is in, the detector asks for exactly the rest of the record.
      expect(asked[asked.length - 1]).to.equal(hello.length);
    });

    it(`${v.name}: the client's next records sent right behind the hello are handed back`, () => {
      const d = detectClientHello(Buffer.concat([hello, hex(v.client_followup_stream)]));
      expect(d.kind === 'hello' && d.rest.toString('hex')).to.equal(v.client_followup_stream);
    });

    it(`${v.name}: a hello split over three TLS records is reassembled and still authenticates`, () => {
      const split = splitHelloRecords(hello, [3, 200]);
      const { result } = detectInPieces(split, [7, 100, 1]);
      expect(result.kind).to.equal('hello');
      if (result.kind !== 'hello') return;
      expect(result.records).to.equal(3);
      expect(result.hello.toString('hex')).to.equal(v.client_hello);
      expect(validateClientHello(result.hello, policy).ok).to.equal(true);
    });

    it(`${v.name}: accepted at server time with the right secret, timestamp, session id and SNI`, () => {
      const verdict = validateClientHello(hello, policy);
      expect(verdict.ok).to.equal(true);
      if (!verdict.ok) return;
      expect(verdict.secretIndex).to.equal(1);
      expect(verdict.timestamp).to.equal(v.decoded_timestamp);
      expect(verdict.sessionId.toString('hex')).to.equal(v.session_id);
      expect(verdict.sni).to.equal(v.domain);
      expect(verdict.clientRandom.toString('hex')).to.equal(v.client_random);
      expect(verdict.cipherSuite).to.equal(0x1301);
      expect(verdict.replayKey.toString('hex')).to.equal(v.client_random.slice(0, 32));
    });

    it(`${v.name}: the proxy answers byte for byte like the reference, given its key share and noise`, () => {
      const verdict = validateClientHello(hello, policy);
      if (!verdict.ok) expect.fail(verdict.reason);
      const expected = hex(v.server_response);
      const layout = v.server_response_layout;
      const noise = expected.subarray(layout.app_data_record_offset + 5);
      const answer = buildServerHello({
        ...verdict,
        secret: policy.secrets[verdict.secretIndex]!,
        keyShare: hex(layout.x25519_key_share),
        payloadLength: layout.app_data_payload_len,
        random: (n) => (n === noise.length ? noise : expect.fail(`unexpected draw of ${n}`)),
      });
      expect(answer.toString('hex')).to.equal(v.server_response);
    });

    it(`${v.name}: the server random is the MAC of client random and the zeroed answer`, () => {
      const mac = serverHelloMac(alice, hex(v.client_random), hex(v.server_response_random_zeroed));
      expect(mac.toString('hex')).to.equal(v.server_random);
      const check = verifyServerHello(hex(v.server_response), hex(v.client_random), alice);
      expect(check).to.deep.include({ kind: 'ok', consumed: hex(v.server_response).length });
    });

    it(`${v.name}: the inner obfuscated2 handshake comes out of the client's records`, () => {
      const stream = hex(v.client_followup_stream);
      const reader = new TlsRecordReader();
      // Split inside the CCS, inside a record header and inside the payload.
      const plain = Buffer.concat(
        [3, 4, 30, stream.length].map((end, i, ends) => {
          return reader.push(stream.subarray(i === 0 ? 0 : ends[i - 1], end));
        }),
      );
      const inner = v.inner_obfuscated2;
      expect(plain.subarray(0, 64).toString('hex')).to.equal(inner.header_on_wire);
      const h = parseClientHeader(plain.subarray(0, 64), [alice]);
      expect(h).to.not.equal(undefined);
      expect(h!.transport).to.equal('padded');
      expect(h!.dc).to.equal(inner.dc);
      expect(h!.decrypt.key.toString('hex')).to.equal(inner.proxy_decrypt_key);
      expect(h!.decrypt.iv.toString('hex')).to.equal(inner.proxy_decrypt_iv);
      expect(h!.encrypt.key.toString('hex')).to.equal(inner.proxy_encrypt_key);
      expect(h!.encrypt.iv.toString('hex')).to.equal(inner.proxy_encrypt_iv);
      expect(h!.decryptor.update(plain.subarray(64)).toString('hex')).to.equal(inner.c2p_plain);
    });

    it(`${v.name}: our record writer produces the client's stream and the proxy's first record`, () => {
      const stream = hex(v.client_followup_stream);
      const appData = stream.subarray(CHANGE_CIPHER_SPEC.length + 5);
      const written = Buffer.concat([CHANGE_CIPHER_SPEC, wrapRecords(appData, CLIENT_MAX_RECORD_PAYLOAD)]);
      expect(written.toString('hex')).to.equal(v.client_followup_stream);

      const h = parseClientHeader(appData.subarray(0, 64), [alice])!;
      const p2c = wrapRecords(ctrCipher(h.encrypt).update(hex(v.p2c_plain)));
      expect(p2c.toString('hex')).to.equal(v.p2c_tls_records);
    });
  }
});

describe('fake TLS: hellos the proxy must refuse (vectors)', () => {
  it('a hello whose SNI was changed on the way fails the MAC', () => {
    expectRefused(validateClientHello(negative('bad_hmac_modified_sni'), policy), 'bad-mac');
  });

  it('a hello made with a secret we do not have fails the MAC', () => {
    expectRefused(validateClientHello(negative('wrong_secret'), policy), 'bad-mac');
  });

  it('a hello one hour old, or one hour ahead of our clock, is refused for clock skew', () => {
    for (const name of ['timestamp_one_hour_old', 'timestamp_one_hour_in_future']) {
      const v = validateClientHello(negative(name), policy);
      expectRefused(v, 'clock-skew');
      // The MAC was right: the caller learns whose hello it was, and the key to remember.
      expect(v).to.deep.include({ secretIndex: 1 });
      expect(v.replayKey?.length).to.equal(16);
    }
  });

  it('a replayed hello is caught by a cache of replay keys, even with its timestamp rewritten', () => {
    const seen = new Set<string>();
    const admit = (hello: Buffer): boolean => {
      const v = validateClientHello(hello, policy);
      if (v.replayKey === undefined) return false;
      const key = v.replayKey.toString('hex');
      const replay = seen.has(key);
      seen.add(key);
      return v.ok && !replay;
    };
    expect(admit(hex(file.vectors[0]!.client_hello))).to.equal(true);
    expect(admit(negative('replayed_hello'))).to.equal(false);
    // Bytes 28..31 of the random are outside the MAC: a replayer can move the timestamp freely.
    const retimed = Buffer.from(negative('replayed_hello'));
    retimed[39]! ^= 0x01;
    expect(validateClientHello(retimed, policy).ok, 'still authentic').to.equal(true);
    expect(admit(retimed)).to.equal(false);
  });
});

describe('fake TLS: our clock policy (policy_dependent rows)', () => {
  const accepted = (name: string, window?: ClockWindow) =>
    validateClientHello(policyRow(name), window ? { ...policy, window } : policy).ok;

  it('by default a hello up to 10 minutes old is accepted, 601 seconds old is not', () => {
    expect(accepted('mtprotoproxy_window_now_minus_ts_599')).to.equal(true);
    expect(accepted('mtprotoproxy_window_now_minus_ts_601')).to.equal(false);
  });

  it('by default a client clock more than 10 minutes ahead is refused (mtprotoproxy allows 20)', () => {
    expect(accepted('mtprotoproxy_window_now_minus_ts_-1199')).to.equal(false);
    expect(accepted('mtprotoproxy_window_now_minus_ts_-1201')).to.equal(false);
  });

  it('by default a "time since boot" timestamp is refused, as the official proxy and mtg do', () => {
    const v = validateClientHello(policyRow('timestamp_small_boot_time'), policy);
    expectRefused(v, 'clock-skew');
    expect(v).to.deep.include({ timestamp: 86400 });
  });

  it('an operator can configure the reference window and boot-time rule and get its answers', () => {
    const reference: ClockWindow = {
      maxAgeSeconds: 599,
      maxAheadSeconds: 1199,
      bootTimeBelowSeconds: 86_400_000,
    };
    expect(accepted('mtprotoproxy_window_now_minus_ts_599', reference)).to.equal(true);
    expect(accepted('mtprotoproxy_window_now_minus_ts_601', reference)).to.equal(false);
    expect(accepted('mtprotoproxy_window_now_minus_ts_-1199', reference)).to.equal(true);
    expect(accepted('mtprotoproxy_window_now_minus_ts_-1201', reference)).to.equal(false);
    expect(accepted('timestamp_small_boot_time', reference)).to.equal(true);
  });
});

describe('fake TLS: SNI and cipher suite', () => {
  const random = seededRandom('sni');

  it('a hello naming a domain we do not serve is refused with its SNI, so it can be fronted', () => {
    const v = validateClientHello(hex(file.vectors[0]!.client_hello), { ...policy, domains: ['other.org'] });
    expectRefused(v, 'bad-sni');
    expect(v).to.deep.include({ sni: 'example.com' });
  });

  it('a hello without SNI (Telegram iOS) is accepted', () => {
    const { hello } = buildClientHello({ secret: alice, now: serverNow, random });
    const v = validateClientHello(hello, policy);
    expect(v).to.deep.include({ ok: true, sni: undefined });
  });

  it('SNI is compared without regard to case', () => {
    const { hello } = buildClientHello({ secret: alice, domain: 'Example.COM', now: serverNow, random });
    expect(validateClientHello(hello, policy)).to.deep.include({ ok: true, sni: 'example.com' });
  });

  it('a hello whose first real cipher suite is not TLS 1.3 is refused', () => {
    const { hello } = buildClientHello({ secret: alice, domain: 'example.com', now: serverNow, random });
    const body = Buffer.from(hello);
    // Cipher suites start after the 32-byte session id: length, GREASE, then 13 01.
    const first = 44 + 32 + 2 + 2;
    expect(body.readUInt16BE(first)).to.equal(0x1301);
    body.writeUInt16BE(0xc02b, first);
    const resigned = resign(body, alice, serverNow);
    expectRefused(validateClientHello(resigned, policy), 'bad-cipher-suite');
  });
});

describe('fake TLS: our stand-in client', () => {
  it('sends the classic 517-byte hello or a modern one of about 1.7 KB', () => {
    const random = seededRandom('shapes');
    const classic = buildClientHello({ secret: alice, domain: 'example.com', now: serverNow, random }).hello;
    const modern = buildClientHello({
      secret: alice,
      domain: 'example.com',
      now: serverNow,
      random,
      shape: 'modern',
    });
    expect(classic.length).to.equal(517);
    expect(classic.subarray(0, 4).toString('hex')).to.equal('16030102');
    expect(modern.hello.length).to.be.within(1600, 1900);
    expect(modern.hello.subarray(0, 4).toString('hex')).to.equal('16030106');
    expect(modern.clientRandom.equals(modern.hello.subarray(11, 43))).to.equal(true);
  });
});

describe('fake TLS: what is not a ClientHello', () => {
  const notTls = (bytes: Buffer) => detectClientHello(bytes);

  it('an HTTP request is recognised at its first byte', () => {
    expect(notTls(Buffer.from('G'))).to.deep.equal({ kind: 'not-tls', reason: 'not-handshake-record' });
  });

  it('plain obfuscated2 headers are not taken for TLS', () => {
    for (const v of o2File.vectors) expect(notTls(hex(v.header_on_wire)).kind).to.equal('not-tls');
  });

  it('other TLS versions, oversized or empty records and other handshake messages are refused', () => {
    expect(notTls(hex('160302'))).to.deep.include({ reason: 'bad-record-version' });
    expect(notTls(hex('1603014001'))).to.deep.include({ reason: 'bad-record-length' });
    expect(notTls(hex('1603010000'))).to.deep.include({ reason: 'bad-record-length' });
    expect(notTls(hex('160301020002'))).to.deep.include({ reason: 'not-client-hello' });
    expect(notTls(hex('16030302000100ff00'))).to.deep.include({ reason: 'hello-too-long' });
  });

  it('a hello in a modern 16 03 03 record is read like one in 16 03 01', () => {
    const hello = Buffer.from(hex(file.vectors[1]!.client_hello));
    hello[2] = 0x03;
    expect(detectClientHello(hello).kind).to.equal('hello');
  });

  it('a record carrying bytes past the end of the hello is refused', () => {
    const hello = hex(file.vectors[0]!.client_hello);
    const longer = Buffer.concat([hello, Buffer.alloc(1)]);
    longer.writeUInt16BE(hello.length - 5 + 1, 3);
    expect(notTls(longer)).to.deep.include({ reason: 'bad-fragment' });
  });

  it(`a hello cut into more than ${MAX_HELLO_RECORDS} records is refused`, () => {
    const hello = hex(file.vectors[0]!.client_hello);
    const split = splitHelloRecords(hello, new Array(MAX_HELLO_RECORDS).fill(10));
    expect(notTls(split)).to.deep.include({ reason: 'too-many-records' });
    const justEnough = splitHelloRecords(hello, new Array(MAX_HELLO_RECORDS - 1).fill(10));
    expect(notTls(justEnough).kind).to.equal('hello');
  });
});

describe('fake TLS: the proxy answer', () => {
  it('by default carries a fresh, real x25519 key and 2500..4699 bytes of noise', () => {
    const random = seededRandom('answer');
    const { clientRandom, sessionId } = buildClientHello({ secret: alice, now: serverNow, random });
    const a = buildServerHello({ clientRandom, sessionId, secret: alice, random });
    const b = buildServerHello({ clientRandom, sessionId, secret: alice, random });
    const keyOf = (answer: Buffer) => answer.subarray(89, 121);
    expect(keyOf(a).equals(keyOf(b))).to.equal(false);
    // A key we can agree with is a point on the curve, not 32 random bytes.
    const peer = generateKeyPairSync('x25519');
    const key = createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: keyOf(a).toString('base64url') },
      format: 'jwk',
    });
    expect(diffieHellman({ privateKey: peer.privateKey, publicKey: key }).length).to.equal(32);
    for (const answer of [a, b]) {
      const noise = answer.length - 138;
      expect(noise).to.be.within(2500, 4699);
      expect(answer.readUInt16BE(136)).to.equal(noise);
    }
  });

  it('a client with the secret accepts it, one with another secret does not', () => {
    const random = seededRandom('verify');
    const { clientRandom, sessionId } = buildClientHello({ secret: alice, now: serverNow, random });
    const answer = buildServerHello({ clientRandom, sessionId, secret: alice, random, payloadLength: 100 });
    const after = Buffer.from('17030300', 'hex');
    const check = verifyServerHello(Buffer.concat([answer, after]), clientRandom, alice);
    expect(check).to.deep.include({ kind: 'ok', consumed: answer.length });
    expect(check.kind === 'ok' && check.rest.toString('hex')).to.equal('17030300');
    expect(verifyServerHello(answer.subarray(0, answer.length - 1), clientRandom, alice).kind).to.equal(
      'need-more',
    );
    expect(() => verifyServerHello(answer, clientRandom, bob)).to.throw(ProtocolError, 'server random');
  });

  it('the payload length drawn by default stays in the range of real certificate flights', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (bytes) => {
        const n = randomPayloadLength(() => Buffer.from(bytes));
        return n >= 2500 && n <= 4699;
      }),
    );
  });
});

describe('fake TLS: the record layer after the handshake', () => {
  it('a chunk holding one whole record gives its payload without a copy', () => {
    const chunk = wrapRecords(Buffer.from('hello proxy'));
    const out = new TlsRecordReader().push(chunk);
    expect(out.toString()).to.equal('hello proxy');
    expect(out.buffer).to.equal(chunk.buffer);
  });

  it('a large write becomes 16384-byte records', () => {
    const out = wrapRecords(Buffer.alloc(40000, 7));
    expect(out.length).to.equal(40000 + 3 * 5);
    expect(out.readUInt16BE(3)).to.equal(16384);
    expect(out.readUInt16BE(5 + 16384 + 3)).to.equal(16384);
    expect(out.readUInt16BE(2 * (5 + 16384) + 3)).to.equal(40000 - 2 * 16384);
    expect(wrapRecords(Buffer.alloc(0)).length).to.equal(0);
  });

  const refuses = (stream: string, code: string) => {
    expect(() => new TlsRecordReader().push(hex(stream)))
      .to.throw(ProtocolError)
      .with.property('code', code);
  };

  it('an alert, a handshake record or a second ChangeCipherSpec is a protocol error', () => {
    refuses('15030300020250', 'ERR_TLS_RECORD_TYPE');
    refuses('1603030001ff', 'ERR_TLS_RECORD_TYPE');
    refuses('140303000101140303000101', 'ERR_TLS_RECORD_TYPE');
    refuses('170303000161140303000101', 'ERR_TLS_RECORD_TYPE');
    refuses('140303000102', 'ERR_TLS_CCS');
    refuses('140303000201', 'ERR_TLS_CCS');
    refuses('170301000161', 'ERR_TLS_RECORD_VERSION');
  });

  it('a record longer than 16640 bytes is refused at its header', () => {
    refuses('1703034101', 'ERR_TLS_RECORD_TOO_LONG');
    expect(new TlsRecordReader().push(hex('1703034100')).length).to.equal(0);
  });
});

describe('fake TLS: properties', () => {
  const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));

  it('any bytes given to detection and validation give an answer, never an exception', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          bytes(600),
          bytes(8).map((b) => Buffer.concat([hex('160301'), b])),
        ),
        (input) => {
          const d = detectClientHello(input);
          if (d.kind === 'need-more') {
            expect(d.atLeast).to.be.greaterThan(input.length);
            expect(d.atLeast).to.be.at.most(MAX_HELLO_BUFFER);
          }
          expect(validateClientHello(input, policy).ok).to.equal(false);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('an authentic hello with any body is accepted or refused, never an exception', () => {
    const header = (len: number) => {
      const h = Buffer.alloc(9);
      h.writeUIntBE(0x160301, 0, 3);
      h.writeUInt16BE(len + 4, 3);
      h.writeUInt32BE(0x01000000 | len, 5);
      return h;
    };
    fc.assert(
      fc.property(bytes(300), fc.uint8Array({ minLength: 34, maxLength: 34 }), (tail, head) => {
        const body = Buffer.concat([head, tail]);
        const hello = resign(Buffer.concat([header(body.length), body]), alice, serverNow);
        const v = validateClientHello(hello, policy);
        if (!v.ok) expect(v.reason).to.be.oneOf(['malformed', 'bad-sni', 'bad-cipher-suite']);
      }),
      { numRuns: 500 },
    );
  });

  it('any bytes given to the record reader give payload or a ProtocolError', () => {
    fc.assert(
      fc.property(bytes(200), fc.boolean(), (input, asRecord) => {
        const stream = asRecord ? Buffer.concat([hex('170303'), input]) : input;
        try {
          new TlsRecordReader().push(stream);
        } catch (err) {
          expect(err).to.be.instanceOf(ProtocolError);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('records written by us read back to the same bytes however the network cuts them', () => {
    fc.assert(
      fc.property(
        fc.array(bytes(40000), { maxLength: 4 }),
        fc.integer({ min: 1, max: 16384 }),
        fc.array(fc.integer({ min: 1, max: 20000 }), { minLength: 1, maxLength: 20 }),
        fc.boolean(),
        (writes, maxPayload, cuts, withCcs) => {
          const wire = Buffer.concat([
            withCcs ? CHANGE_CIPHER_SPEC : Buffer.alloc(0),
            ...writes.map((w) => wrapRecords(w, maxPayload)),
          ]);
          const reader = new TlsRecordReader();
          const out: Buffer[] = [];
          for (let at = 0, i = 0; at < wire.length; i++) {
            const end = Math.min(wire.length, at + cuts[i % cuts.length]!);
            out.push(reader.push(wire.subarray(at, end)));
            at = end;
          }
          expect(Buffer.concat(out).equals(Buffer.concat(writes))).to.equal(true);
          expect(reader.atRecordBoundary).to.equal(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  const helloCase = fc.record({
    secret: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)),
    others: fc.array(
      fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)),
      { maxLength: 3 },
    ),
    domain: fc.option(fc.domain(), { nil: undefined }),
    skew: fc.integer({ min: -600, max: 600 }),
    shape: fc.constantFrom('classic' as const, 'modern' as const),
    seed: fc.string(),
    cuts: fc.array(fc.integer({ min: 1, max: 2000 }), { maxLength: 5 }),
    segments: fc.array(fc.integer({ min: 1, max: 1500 }), { minLength: 1, maxLength: 5 }),
  });

  it('a hello built by our client for any secret, domain and clock inside the window is accepted', () => {
    fc.assert(
      fc.property(helloCase, ({ secret, others, domain, skew, shape, seed, cuts, segments }) => {
        const { hello, sessionId } = buildClientHello({
          secret,
          now: serverNow - skew,
          random: seededRandom(seed),
          shape,
          ...(domain === undefined ? {} : { domain }),
        });
        const detected = detectInPieces(splitHelloRecords(hello, cuts), segments).result;
        if (detected.kind !== 'hello') expect.fail(`not detected: ${JSON.stringify(detected)}`);
        const secrets = [...others, secret];
        const v = validateClientHello(detected.hello, {
          secrets,
          domains: domain === undefined ? [] : [domain.toLowerCase()],
          now: () => serverNow,
        });
        if (!v.ok) expect.fail(v.reason);
        expect(secrets[v.secretIndex]!.equals(secret)).to.equal(true);
        expect(v.timestamp).to.equal(serverNow - skew);
        expect(v.sni).to.equal(domain?.toLowerCase());
        expect(v.sessionId.equals(sessionId)).to.equal(true);
      }),
      { numRuns: 200 },
    );
  });

  it('changing any byte of a hello outside the timestamp makes it fail', () => {
    const random = seededRandom('mutate');
    const hellos = [
      buildClientHello({ secret: alice, domain: 'example.com', now: serverNow, random }).hello,
      buildClientHello({ secret: alice, now: serverNow, random, shape: 'modern' }).hello,
    ];
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.nat({ max: 1 }), (where, flip, which) => {
        const hello = Buffer.from(hellos[which]!);
        const pos = where % hello.length;
        hello[pos]! ^= flip;
        const v = validateClientHello(hello, policy);
        if (pos >= 39 && pos < 43) {
          // The timestamp bytes: the MAC still holds, only the clock window can refuse.
          if (!v.ok) expect(v.reason).to.equal('clock-skew');
          else expect(v.timestamp).to.not.equal(serverNow);
          expect(v.replayKey?.equals(hellos[which]!.subarray(11, 27))).to.equal(true);
        } else {
          expect(v.ok).to.equal(false);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
