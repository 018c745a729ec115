// Fake TLS, first step (docs/protocol.md §4.1-4.6, §4.9): find a ClientHello in the bytes a client
// sent, then decide whether it was made with one of our secrets. Pure code: the caller owns the
// socket, the clock and the replay cache; every refusal is a value, so the caller can mask.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { secretKeyObject } from '../protocol/key-objects.js';
import { RECORD_HANDSHAKE, RECORD_HEADER_LEN } from './records.js';

const HANDSHAKE_HEADER_LEN = 4;
const HANDSHAKE_CLIENT_HELLO = 0x01;
/** A record of the hello carries at most this many bytes (TLS plaintext limit). */
const MAX_HELLO_RECORD_PAYLOAD = 16384;
/** The whole handshake message (4-byte header included), however many records carry it. */
const MAX_HELLO_HANDSHAKE_LEN = 16384;
/** A hello split into more records than this is refused (mtg allows 10). */
export const MAX_HELLO_RECORDS = 16;
/** Detection never asks for more than this many bytes: the caller's buffer bound. */
export const MAX_HELLO_BUFFER = MAX_HELLO_HANDSHAKE_LEN + MAX_HELLO_RECORDS * RECORD_HEADER_LEN;

export type NotTlsReason =
  | 'not-handshake-record'
  | 'bad-record-version'
  | 'bad-record-length'
  | 'not-client-hello'
  | 'hello-too-long'
  | 'too-many-records'
  | 'bad-fragment';

export type HelloDetection =
  /** Call again once the buffer holds at least `atLeast` bytes in total. */
  | { readonly kind: 'need-more'; readonly atLeast: number }
  /** Not a TLS ClientHello (or not one we will read): mask or refuse the connection. */
  | { readonly kind: 'not-tls'; readonly reason: NotTlsReason }
  | {
      readonly kind: 'hello';
      /**
       * The hello as one record: a view of the input when it came in one record, else the rebuild
       * `16 03 vv || BE16(len) || handshake` (vv = the first record's version) the client MACed.
       */
      readonly hello: Buffer;
      /** How many input bytes the hello records took. */
      readonly consumed: number;
      /** The bytes that followed the hello in the input (a view, often the start of §4.8). */
      readonly rest: Buffer;
      readonly records: number;
    };

function isRecordVersion(major: number | undefined, minor: number | undefined): boolean {
  return major === 0x03 && (minor === 0x01 || minor === 0x03);
}

/**
 * Looks at everything received so far on a new connection (§4.1). Accepts handshake records with
 * version `03 01` or `03 03` of any length up to 16384, a hello split over several records and
 * records split over many reads; decides `not-tls` as early as the bytes allow. Never asks for more
 * than MAX_HELLO_BUFFER bytes.
 */
export function detectClientHello(received: Buffer): HelloDetection {
  const hsHeader = [0, 0, 0, 0];
  let hsGot = 0; // handshake bytes seen in complete and partial records
  let hsTotal = -1; // 4 + BE24 length, once known
  let pos = 0;
  for (let records = 1; ; records++) {
    if (records > MAX_HELLO_RECORDS) return notTls('too-many-records');
    const missing = hsTotal < 0 ? 1 : hsTotal - hsGot;
    if (received.length <= pos) return needMore(pos + RECORD_HEADER_LEN + missing);
    if (received[pos] !== RECORD_HANDSHAKE) return notTls('not-handshake-record');
    if (received.length >= pos + 3 && !isRecordVersion(received[pos + 1], received[pos + 2])) {
      return notTls('bad-record-version');
    }
    if (received.length < pos + RECORD_HEADER_LEN) return needMore(pos + RECORD_HEADER_LEN + missing);
    const recordLen = received.readUInt16BE(pos + 3);
    if (recordLen === 0 || recordLen > MAX_HELLO_RECORD_PAYLOAD) return notTls('bad-record-length');
    const payloadStart = pos + RECORD_HEADER_LEN;
    const available = Math.min(recordLen, received.length - payloadStart);
    for (let i = 0; i < available && hsGot + i < HANDSHAKE_HEADER_LEN; i++) {
      hsHeader[hsGot + i] = received[payloadStart + i]!;
    }
    const seen = hsGot + available;
    if (seen >= 1 && hsHeader[0] !== HANDSHAKE_CLIENT_HELLO) return notTls('not-client-hello');
    if (hsTotal < 0 && seen >= HANDSHAKE_HEADER_LEN) {
      hsTotal = HANDSHAKE_HEADER_LEN + ((hsHeader[1]! << 16) | (hsHeader[2]! << 8) | hsHeader[3]!);
      if (hsTotal > MAX_HELLO_HANDSHAKE_LEN) return notTls('hello-too-long');
    }
    // A record may not carry bytes past the end of the hello.
    if (hsTotal >= 0 && hsGot + recordLen > hsTotal) return notTls('bad-fragment');
    const recordEnd = payloadStart + recordLen;
    if (available < recordLen) {
      const after = hsTotal < 0 ? 0 : hsTotal - hsGot - recordLen;
      return needMore(recordEnd + (after > 0 ? RECORD_HEADER_LEN + after : 0));
    }
    hsGot += recordLen;
    pos = recordEnd;
    if (hsGot === hsTotal) {
      return {
        kind: 'hello',
        hello: records === 1 ? received.subarray(0, pos) : rebuildSingleRecord(received, pos, hsTotal),
        consumed: pos,
        rest: received.subarray(pos),
        records,
      };
    }
  }
}

function needMore(atLeast: number): HelloDetection {
  return { kind: 'need-more', atLeast: Math.min(atLeast, MAX_HELLO_BUFFER) };
}

function notTls(reason: NotTlsReason): HelloDetection {
  return { kind: 'not-tls', reason };
}

/** Joins the payloads of the hello's records under one record header, as the client MACed them. */
function rebuildSingleRecord(received: Buffer, end: number, hsTotal: number): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_LEN + hsTotal);
  received.copy(out, 0, 0, 3);
  out.writeUInt16BE(hsTotal, 3);
  let at = RECORD_HEADER_LEN;
  for (let pos = 0; pos < end; ) {
    const len = received.readUInt16BE(pos + 3);
    at += received.copy(out, at, pos + RECORD_HEADER_LEN, pos + RECORD_HEADER_LEN + len);
    pos += RECORD_HEADER_LEN + len;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Validation (§4.2-4.6)

const RANDOM_POS = 11;
const RANDOM_LEN = 32;
const MAC_LEN = 28;
const SESSION_ID_LEN_POS = RANDOM_POS + RANDOM_LEN;
const MAX_SESSION_ID_LEN = 32;
/** Bytes of the client random used as the replay key; see AcceptedHello.replayKey. */
const REPLAY_KEY_LEN = 16;
const ZERO_RANDOM = Buffer.alloc(RANDOM_LEN);
const EXT_SERVER_NAME = 0x0000;
const SNI_HOST_NAME = 0x00;

/**
 * Which client timestamps are accepted, with `skew = now - timestamp` (positive: the hello is
 * older than our clock). Default: ±10 minutes, inclusive, and no "time since boot" exception.
 * The window is a filter for stale or badly clocked clients, not replay protection: bytes 28..31 of
 * the random are outside the MAC, so anyone can rewrite the timestamp of a recorded hello.
 */
export interface ClockWindow {
  /** Accept hellos up to this many seconds old. */
  readonly maxAgeSeconds: number;
  /** Accept client clocks up to this many seconds ahead of ours. */
  readonly maxAheadSeconds: number;
  /**
   * Timestamps below this value are read as "seconds since the client booted" (clients without a
   * synchronised clock) and accepted whatever our time; 0 turns the exception off. mtprotoproxy
   * uses 86 400 000, telemt 7 days; the official proxy and mtg have no such exception, and neither
   * do we by default: such a hello would be valid forever, leaving only the replay cache.
   */
  readonly bootTimeBelowSeconds: number;
}

export const DEFAULT_CLOCK_WINDOW: ClockWindow = {
  maxAgeSeconds: 600,
  maxAheadSeconds: 600,
  bootTimeBelowSeconds: 0,
};

export interface HelloPolicy {
  /** The configured 16-byte secrets; `secretIndex` points into this list. */
  readonly secrets: readonly Buffer[];
  /**
   * Domains an SNI may name (compared case-insensitively; pass them lower-case). A hello without
   * SNI is accepted (some clients send none, §4.5); an empty list accepts any SNI.
   */
  readonly domains: readonly string[];
  /** Our clock, in Unix seconds. */
  readonly now: () => number;
  readonly window?: ClockWindow;
  /** Index of the secret to try first (the one that last matched from this source). */
  readonly tryFirst?: number;
}

export interface AcceptedHello {
  readonly ok: true;
  readonly secretIndex: number;
  /** Client's Unix time from the random (§4.3). */
  readonly timestamp: number;
  /** 0..32 bytes, echoed in the ServerHello. */
  readonly sessionId: Buffer;
  /** The server_name host name, lower-cased; undefined when the hello has none. */
  readonly sni: string | undefined;
  /** The 32 bytes as received: the server MAC starts with them (§4.7). */
  readonly clientRandom: Buffer;
  /** First non-GREASE cipher suite, one of 0x1301..0x1303; echo it in the ServerHello. */
  readonly cipherSuite: number;
  /**
   * clientRandom[0:16], the key for the shared replay cache (as the official proxy, mtprotoproxy
   * and telemt). Not the whole random: its last 4 bytes carry the timestamp outside the MAC, so a
   * replay with a rewritten timestamp would slip past a 32-byte key.
   */
  readonly replayKey: Buffer;
}

export type HelloFailureReason = 'malformed' | 'bad-mac' | 'clock-skew' | 'bad-sni' | 'bad-cipher-suite';

export interface RefusedHello {
  readonly ok: false;
  readonly reason: HelloFailureReason;
  /** Present once the random could be read: record it too (the official proxy does, §4.9). */
  readonly replayKey?: Buffer;
  /** Present once the MAC matched. */
  readonly secretIndex?: number;
  readonly timestamp?: number;
  readonly sni?: string;
}

export type HelloVerdict = AcceptedHello | RefusedHello;

/**
 * Decides whether a ClientHello (as returned by detectClientHello: one record) comes from a client
 * that knows one of the secrets. Checks in order: record framing, MAC (§4.3), clock (§4.4), the
 * hello body, SNI (§4.5), cipher suite (§4.6). Never throws for any input.
 */
export function validateClientHello(hello: Buffer, policy: HelloPolicy): HelloVerdict {
  if (!hasClientHelloFraming(hello)) return { ok: false, reason: 'malformed' };
  const clientRandom = Buffer.from(hello.subarray(RANDOM_POS, RANDOM_POS + RANDOM_LEN));
  const replayKey = clientRandom.subarray(0, REPLAY_KEY_LEN);

  const match = matchSecret(hello, clientRandom, policy.secrets, policy.tryFirst);
  if (match === undefined) return { ok: false, reason: 'bad-mac', replayKey };
  const { secretIndex, timestamp } = match;

  if (!isTimestampAllowed(timestamp, policy.now(), policy.window ?? DEFAULT_CLOCK_WINDOW)) {
    return { ok: false, reason: 'clock-skew', replayKey, secretIndex, timestamp };
  }
  const body = parseHelloBody(hello);
  if (body === undefined) return { ok: false, reason: 'malformed', replayKey, secretIndex, timestamp };
  const { sessionId, sni, cipherSuite } = body;
  if (sni !== undefined && policy.domains.length > 0 && !policy.domains.includes(sni)) {
    return { ok: false, reason: 'bad-sni', replayKey, secretIndex, timestamp, sni };
  }
  if (cipherSuite === undefined || cipherSuite < 0x1301 || cipherSuite > 0x1303) {
    return { ok: false, reason: 'bad-cipher-suite', replayKey, secretIndex, timestamp, sni };
  }
  return { ok: true, secretIndex, timestamp, sessionId, sni, clientRandom, cipherSuite, replayKey };
}

/** One record holding one ClientHello handshake message, long enough to carry a random. */
function hasClientHelloFraming(hello: Buffer): boolean {
  return (
    hello.length > SESSION_ID_LEN_POS &&
    hello[0] === RECORD_HANDSHAKE &&
    isRecordVersion(hello[1], hello[2]) &&
    hello.readUInt16BE(3) === hello.length - RECORD_HEADER_LEN &&
    hello[5] === HANDSHAKE_CLIENT_HELLO &&
    hello.readUIntBE(6, 3) === hello.length - RECORD_HEADER_LEN - HANDSHAKE_HEADER_LEN
  );
}

/**
 * HMAC-SHA256 over the hello with the random zeroed, XOR the random: 28 zero bytes + LE32 time.
 * Per secret: one HMAC from a KeyObject made once per secret (a hash state copied from
 * precomputed pads measured no cheaper on Node 24: `npm run bench -- --attack`), `tryFirst` first.
 */
function matchSecret(
  hello: Buffer,
  clientRandom: Buffer,
  secrets: readonly Buffer[],
  tryFirst: number | undefined,
): { secretIndex: number; timestamp: number } | undefined {
  const head = hello.subarray(0, RANDOM_POS);
  const tail = hello.subarray(RANDOM_POS + RANDOM_LEN);
  const macPart = clientRandom.subarray(0, MAC_LEN);
  const first = tryFirst !== undefined && tryFirst >= 0 && tryFirst < secrets.length ? tryFirst : -1;
  for (let n = first < 0 ? 0 : -1; n < secrets.length; n++) {
    const i = n < 0 ? first : n;
    if (n >= 0 && i === first) continue;
    const mac = createHmac('sha256', secretKeyObject(secrets[i]!))
      .update(head)
      .update(ZERO_RANDOM)
      .update(tail)
      .digest();
    if (!timingSafeEqual(mac.subarray(0, MAC_LEN), macPart)) continue;
    const timestamp = (mac.readUInt32LE(MAC_LEN) ^ clientRandom.readUInt32LE(MAC_LEN)) >>> 0;
    return { secretIndex: i, timestamp };
  }
  return undefined;
}

function isTimestampAllowed(timestamp: number, now: number, window: ClockWindow): boolean {
  if (timestamp < window.bootTimeBelowSeconds) return true;
  const skew = now - timestamp;
  return skew <= window.maxAgeSeconds && -skew <= window.maxAheadSeconds;
}

interface HelloBody {
  sessionId: Buffer;
  sni: string | undefined;
  cipherSuite: number | undefined;
}

function isGrease(value: number): boolean {
  return (value & 0x0f0f) === 0x0a0a && value >> 8 === (value & 0xff);
}

/** Session id, cipher suites, compression methods and extensions; undefined if any is malformed. */
function parseHelloBody(hello: Buffer): HelloBody | undefined {
  const end = hello.length;
  let p = SESSION_ID_LEN_POS;
  const sessionIdLen = hello[p]!;
  if (sessionIdLen > MAX_SESSION_ID_LEN || p + 1 + sessionIdLen + 2 > end) return undefined;
  const sessionId = Buffer.from(hello.subarray(p + 1, p + 1 + sessionIdLen));
  p += 1 + sessionIdLen;

  const suitesLen = hello.readUInt16BE(p);
  p += 2;
  if (suitesLen === 0 || suitesLen % 2 !== 0 || p + suitesLen + 1 > end) return undefined;
  let cipherSuite: number | undefined;
  for (let i = 0; i < suitesLen && cipherSuite === undefined; i += 2) {
    const suite = hello.readUInt16BE(p + i);
    if (!isGrease(suite)) cipherSuite = suite;
  }
  p += suitesLen;

  const compressionLen = hello[p]!;
  p += 1;
  if (compressionLen === 0 || p + compressionLen > end) return undefined;
  p += compressionLen;

  if (p === end) return { sessionId, sni: undefined, cipherSuite };
  if (p + 2 > end || hello.readUInt16BE(p) !== end - p - 2) return undefined;
  p += 2;
  let sni: string | undefined;
  while (p < end) {
    if (p + 4 > end) return undefined;
    const type = hello.readUInt16BE(p);
    const len = hello.readUInt16BE(p + 2);
    p += 4;
    if (p + len > end) return undefined;
    if (type === EXT_SERVER_NAME) {
      if (sni !== undefined) return undefined;
      sni = parseServerName(hello.subarray(p, p + len));
      if (sni === undefined) return undefined;
    }
    p += len;
  }
  return { sessionId, sni, cipherSuite };
}

/** The first host_name of a server_name extension body, lower-cased; undefined if malformed. */
function parseServerName(ext: Buffer): string | undefined {
  if (ext.length < 2 || ext.readUInt16BE(0) !== ext.length - 2) return undefined;
  let host: string | undefined;
  for (let p = 2; p < ext.length; ) {
    if (p + 3 > ext.length) return undefined;
    const type = ext[p]!;
    const len = ext.readUInt16BE(p + 1);
    p += 3;
    if (len === 0 || p + len > ext.length) return undefined;
    if (type === SNI_HOST_NAME && host === undefined) host = ext.toString('latin1', p, p + len).toLowerCase();
    p += len;
  }
  return host;
}
