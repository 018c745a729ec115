// The client's side of fake TLS (docs/protocol.md §4.3, §4.7), for stand-in clients in tests and
// the benchmark: a ClientHello shaped like a current browser-like tdlib hello and carrying the MAC,
// and the check tdlib applies to the proxy's answer. Pure code; time and randomness are injected.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ProtocolError } from '../protocol/errors.js';
import type { RandomSource } from '../protocol/obfuscated2.js';
import { RECORD_HANDSHAKE, RECORD_HEADER_LEN } from './records.js';

const RANDOM_POS = 11;
const RANDOM_LEN = 32;
const CLASSIC_HELLO_LEN = 517;
const X25519MLKEM768 = 0x11ec;
const X25519 = 0x001d;
/** tdlib's limit for the records it writes after the handshake (MAX_TLS_PACKET_LENGTH). */
export const CLIENT_MAX_RECORD_PAYLOAD = 2878;

const CIPHER_SUITES = [
  0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d,
  0x002f, 0x0035,
];
const SIGNATURE_ALGORITHMS = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];

export interface ClientHelloParams {
  readonly secret: Buffer;
  /** Put into the SNI; no server_name extension when omitted (as some current clients do). */
  readonly domain?: string;
  /** The client's clock in Unix seconds, written into the random (§4.3). */
  readonly now: number;
  readonly random: RandomSource;
  /**
   * 'classic': the 517-byte hello with an x25519 key share and a padding extension;
   * 'modern': ~1.7 KB with an X25519MLKEM768 key share and an ECH-like extension, no padding.
   */
  readonly shape?: 'classic' | 'modern';
}

export interface ClientHello {
  /** One handshake record, ready to send. */
  readonly hello: Buffer;
  /** hello[11:43], needed to check the ServerHello. */
  readonly clientRandom: Buffer;
  readonly sessionId: Buffer;
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

function vec8(body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([body.length]), body]);
}

function vec16(body: Buffer): Buffer {
  return Buffer.concat([u16(body.length), body]);
}

function u16List(values: readonly number[]): Buffer {
  return Buffer.concat(values.map(u16));
}

function extension(type: number, body: Buffer): Buffer {
  return Buffer.concat([u16(type), vec16(body)]);
}

/**
 * An ML-KEM-768 encapsulation key that servers accept: 768 coefficients below q = 3329, packed
 * 12 bits each, then 32 random bytes (rho), as tdlib makes it (`MlKem768Key`). Random bytes would
 * hold coefficients >= q, which a server that speaks X25519MLKEM768 refuses with an alert.
 */
function mlKemKey(random: RandomSource): Buffer {
  const out = Buffer.alloc(1184);
  const r = random(384 * 4);
  for (let i = 0; i < 384; i++) {
    const a = r.readUInt16LE(i * 4) % 3329;
    const b = r.readUInt16LE(i * 4 + 2) % 3329;
    out[i * 3] = a & 0xff;
    out[i * 3 + 1] = (a >> 8) | ((b & 0x0f) << 4);
    out[i * 3 + 2] = b >> 4;
  }
  random(32).copy(out, 1152);
  return out;
}

/** Four distinct GREASE values (0x?a?a), as browsers draw them. */
function greaseValues(random: RandomSource): number[] {
  const bytes = random(4);
  const values: number[] = [];
  for (let i = 0; i < 4; i++) {
    let high = (bytes[i]! & 0xf0) | 0x0a;
    while (values.includes((high << 8) | high)) high = (high + 0x10) & 0xff;
    values.push((high << 8) | high);
  }
  return values;
}

function helloExtensions(params: ClientHelloParams, grease: number[]): Buffer[] {
  const modern = params.shape === 'modern';
  const [gExtFirst, gGroup, gVersion, gExtLast] = grease as [number, number, number, number];
  const keyShares = [u16(gGroup), vec16(Buffer.from([0]))];
  if (modern)
    keyShares.push(u16(X25519MLKEM768), vec16(Buffer.concat([mlKemKey(params.random), params.random(32)])));
  keyShares.push(u16(X25519), vec16(params.random(32)));
  const groups = modern ? [gGroup, X25519MLKEM768, X25519, 0x0017, 0x0018] : [gGroup, X25519, 0x0017, 0x0018];
  const exts = [extension(gExtFirst, Buffer.alloc(0))];
  if (params.domain !== undefined) {
    const name = Buffer.from(params.domain, 'latin1');
    exts.push(extension(0x0000, vec16(Buffer.concat([Buffer.from([0]), vec16(name)]))));
  }
  exts.push(
    extension(0x0017, Buffer.alloc(0)),
    extension(0xff01, Buffer.from([0])),
    extension(0x000a, vec16(u16List(groups))),
    extension(0x000b, Buffer.from([1, 0])),
    extension(0x0023, Buffer.alloc(0)),
    extension(0x0010, vec16(Buffer.concat([vec8(Buffer.from('h2')), vec8(Buffer.from('http/1.1'))]))),
    extension(0x0005, Buffer.from([1, 0, 0, 0, 0])),
    extension(0x000d, vec16(u16List(SIGNATURE_ALGORITHMS))),
    extension(0x0012, Buffer.alloc(0)),
    extension(0x0033, vec16(Buffer.concat(keyShares))),
    extension(0x002d, Buffer.from([1, 1])),
    extension(0x002b, vec8(u16List([gVersion, 0x0304, 0x0303]))),
    extension(0x001b, Buffer.from([2, 0, 2])),
  );
  if (modern) {
    const ech = Buffer.concat([Buffer.from([0, 0, 1, 0, 1]), params.random(1), vec16(params.random(32))]);
    exts.push(extension(0xfe0d, Buffer.concat([ech, vec16(params.random(144))])));
  }
  exts.push(extension(gExtLast, Buffer.from([0])));
  return exts;
}

/** Wraps a handshake body into a ClientHello record. */
function helloRecord(body: Buffer): Buffer {
  const head = Buffer.alloc(RECORD_HEADER_LEN + 4);
  head.writeUInt8(RECORD_HANDSHAKE, 0);
  head.writeUInt16BE(0x0301, 1);
  head.writeUInt16BE(body.length + 4, 3);
  head.writeUInt8(0x01, 5);
  head.writeUIntBE(body.length, 6, 3);
  return Buffer.concat([head, body]);
}

/** A ClientHello the proxy must accept for `secret` at time `now` (and `domain`, if it checks SNI). */
export function buildClientHello(params: ClientHelloParams): ClientHello {
  const grease = greaseValues(params.random);
  const sessionId = Buffer.from(params.random(32));
  const fixed = Buffer.concat([
    u16(0x0303),
    Buffer.alloc(RANDOM_LEN),
    vec8(sessionId),
    vec16(u16List([grease[0]!, ...CIPHER_SUITES])),
    vec8(Buffer.from([0])),
  ]);
  const exts = helloExtensions(params, grease);
  const unpadded = RECORD_HEADER_LEN + 4 + fixed.length + 2 + exts.reduce((n, e) => n + e.length, 0);
  // Pad the classic shape to 517 bytes when the padding extension's 4-byte header fits.
  if (params.shape !== 'modern' && unpadded + 4 <= CLASSIC_HELLO_LEN) {
    exts.push(extension(0x0015, Buffer.alloc(CLASSIC_HELLO_LEN - unpadded - 4)));
  }
  const allExts = Buffer.concat(exts);
  const hello = helloRecord(Buffer.concat([fixed, vec16(allExts)]));

  const mac = createHmac('sha256', params.secret).update(hello).digest();
  mac.writeUInt32LE((mac.readUInt32LE(28) ^ params.now) >>> 0, 28);
  mac.copy(hello, RANDOM_POS);
  return { hello, clientRandom: mac, sessionId };
}

/**
 * Splits a one-record hello into several handshake records with the given payload sizes (the
 * last record takes what is left), as DPI-evasion tools in front of a client do (§4.1).
 */
export function splitHelloRecords(hello: Buffer, payloadSizes: readonly number[]): Buffer {
  const payload = hello.subarray(RECORD_HEADER_LEN);
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 0; from < payload.length; i++) {
    const size = i < payloadSizes.length ? Math.max(1, payloadSizes[i]!) : payload.length - from;
    const piece = payload.subarray(from, Math.min(payload.length, from + size));
    const head = Buffer.from(hello.subarray(0, RECORD_HEADER_LEN));
    head.writeUInt16BE(piece.length, 3);
    parts.push(head, piece);
    from += piece.length;
  }
  return Buffer.concat(parts);
}

export type ServerHelloCheck =
  | { readonly kind: 'need-more' }
  /** The answer is authentic; `rest` is what followed it (the first application-data records). */
  | { readonly kind: 'ok'; readonly consumed: number; readonly rest: Buffer };

const ANSWER_HEAD = Buffer.from([0x16, 0x03, 0x03]);
const ANSWER_MIDDLE = Buffer.from([0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x17, 0x03, 0x03]);

/**
 * tdlib's check of the proxy's answer (TlsInit::wait_hello_response): `16 03 03` + a record, then
 * literally `14 03 03 00 01 01 17 03 03` + one more record, and a server random equal to
 * HMAC-SHA256(secret, clientRandom || those bytes with the random zeroed). Throws ProtocolError
 * when the answer is not one.
 */
export function verifyServerHello(received: Buffer, clientRandom: Buffer, secret: Buffer): ServerHelloCheck {
  let end = 0;
  for (const prefix of [ANSWER_HEAD, ANSWER_MIDDLE]) {
    if (received.length < end + prefix.length + 2) return { kind: 'need-more' };
    if (!received.subarray(end, end + prefix.length).equals(prefix)) {
      throw new ProtocolError('ERR_TLS_SERVER_HELLO', 'the answer to the hello does not start like one');
    }
    end += prefix.length + 2 + received.readUInt16BE(end + prefix.length);
    if (received.length < end) return { kind: 'need-more' };
  }
  const answer = Buffer.from(received.subarray(0, end));
  if (answer.length < RANDOM_POS + RANDOM_LEN) {
    throw new ProtocolError('ERR_TLS_SERVER_HELLO', 'the ServerHello is too short');
  }
  const serverRandom = Buffer.from(answer.subarray(RANDOM_POS, RANDOM_POS + RANDOM_LEN));
  answer.fill(0, RANDOM_POS, RANDOM_POS + RANDOM_LEN);
  const expected = createHmac('sha256', secret).update(clientRandom).update(answer).digest();
  if (!timingSafeEqual(expected, serverRandom)) {
    throw new ProtocolError(
      'ERR_TLS_SERVER_HELLO',
      'the server random is not our MAC: wrong secret or proxy',
    );
  }
  return { kind: 'ok', consumed: end, rest: received.subarray(end) };
}
