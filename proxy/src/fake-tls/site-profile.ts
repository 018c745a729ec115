// A site profile: what one fake-TLS domain's real server sends to a Telegram-like ClientHello,
// summed up over a few samples (server-flight.ts), and the answer we build from it. Pure code:
// samples in, a profile out; a profile and a hello in, the layout of our answer out.
//
// What the apps accept (read in their public sources; the details are in the README, "Stealth"):
// exactly ServerHello record + ChangeCipherSpec + ONE application-data record, the CCS right after
// the ServerHello and arriving with it. So the site's extension order and lengths, its cipher and
// its encrypted first-flight length are copied; the number of encrypted records is not (one
// record carries the site's whole flight, headers of the records it replaces included).
import { createECDH, generateKeyPairSync } from 'node:crypto';
import type { RandomSource } from '../protocol/obfuscated2.js';
import { MAX_RECORD_PAYLOAD, RECORD_HEADER_LEN } from './records.js';
import type { FlightSample } from './server-flight.js';
import type { HelloExtension } from './server-hello.js';
import { randomPayloadLength } from './server-hello.js';

/** Which of the apps' two hello shapes a sample answered (client.ts 'classic'/'modern'). */
export type HelloKind = 'classic' | 'modern';
export const HELLO_KINDS: readonly HelloKind[] = ['classic', 'modern'];

const KEY_SHARE = 0x0033;
const X25519 = 0x001d;
const SECP256R1 = 0x0017;
const X25519MLKEM768 = 0x11ec;
const MLKEM_CIPHERTEXT = 1088;
/** An X25519 key_share body (group, length 32, key); the key is replaced by a fresh one. */
const X25519_SHARE_HEX = `001d0020${'00'.repeat(32)}`;

/** The site's answer to one hello kind, over all samples of it. */
export interface FlightShape {
  readonly samples: number;
  readonly version: number;
  readonly cipherSuite: number;
  /** Extension types and bodies (hex) of the first sample; key shares are made fresh per answer. */
  readonly extensions: readonly { readonly type: number; readonly data: string }[];
  readonly ccs: FlightSample['ccs'];
  /** Encrypted records per flight, smallest and largest seen. */
  readonly records: { readonly min: number; readonly max: number };
  /** Bytes on the wire of the encrypted records, record headers included: smallest, largest. */
  readonly flightBytes: { readonly min: number; readonly max: number };
  /** Gaps in ms between consecutive encrypted records, all samples together (timing option). */
  readonly gapsMs: readonly number[];
}

export type ProfileSource = 'measured' | 'cache' | 'fallback';

export interface SiteProfile {
  readonly domain: string;
  /** host:port that was measured. */
  readonly target: string;
  readonly source: ProfileSource;
  /** When the shapes were measured (ms since the epoch); undefined for the fallback. */
  readonly measuredAt: number | undefined;
  readonly shapes: { readonly [K in HelloKind]?: FlightShape };
  /** Why the last measurement failed, if it did. */
  readonly lastError?: string;
  /**
   * The site's answer to a page request after a full handshake: its record sizes and the gaps
   * between reads (ms), which TLS_RECORD_TIMING=site follows. Absent when it could not be had.
   */
  readonly response?: { readonly records: readonly number[]; readonly gapsMs: readonly number[] };
}

function flightBytes(sample: FlightSample): number {
  return sample.records.reduce((n, r) => n + RECORD_HEADER_LEN + r, 0);
}

/**
 * ServerHello extensions we copy, all bodies together. Real ones are under 1.2 KB (a post-quantum
 * key share takes 1128). Telegram Android needs the ServerHello and the 11 bytes after it in one
 * socket read (README, Stealth), so the ServerHello must fit the first TCP segment with room to
 * spare; a site sending more is not copied (this also keeps a hostile mask target from making our
 * answer fail or balloon).
 */
export const MAX_COPIED_EXTENSION_BYTES = 1280;

function copyable(s: FlightSample): boolean {
  const bytes = s.extensions.reduce((n, e) => n + 4 + e.data.length / 2, 0);
  return s.records.length > 0 && bytes <= MAX_COPIED_EXTENSION_BYTES && s.extensions.length <= 64;
}

/** Sums up the samples of one hello kind; undefined when there is none with an encrypted flight. */
export function shapeOf(samples: readonly FlightSample[]): FlightShape | undefined {
  const usable = samples.filter(copyable);
  const first = usable[0];
  if (first === undefined) return undefined;
  const bytes = usable.map(flightBytes);
  const counts = usable.map((s) => s.records.length);
  const gaps: number[] = [];
  for (const s of usable) {
    for (let i = 1; i < s.recordTimes.length; i++) gaps.push(s.recordTimes[i]! - s.recordTimes[i - 1]!);
  }
  // The CCS placement that most samples showed (ties: with the hello, what the apps need).
  const withHello = usable.filter((s) => s.ccs === 'with-hello').length;
  const separate = usable.filter((s) => s.ccs === 'separate').length;
  const none = usable.length - withHello - separate;
  const ccs =
    withHello >= separate && withHello >= none ? 'with-hello' : separate >= none ? 'separate' : 'none';
  return {
    samples: usable.length,
    version: first.version,
    cipherSuite: first.cipherSuite,
    extensions: first.extensions.map((e) => ({ type: e.type, data: e.data })),
    ccs,
    records: { min: Math.min(...counts), max: Math.max(...counts) },
    flightBytes: { min: Math.min(...bytes), max: Math.max(...bytes) },
    gapsMs: gaps.slice(0, 256),
  };
}

/** The documented fallback: what we answer when a domain was never measured. */
export function fallbackProfile(domain: string, target: string, lastError?: string): SiteProfile {
  return { domain, target, source: 'fallback', measuredAt: undefined, shapes: {}, lastError };
}

/** The layout of one answer, ready for buildServerHello. */
export interface AnswerLayout {
  /** Undefined: the fallback layout (key_share, supported_versions). */
  readonly extensions: readonly HelloExtension[] | undefined;
  readonly cipherSuite: number;
  readonly payloadLength: number;
}

function keyShareFor(group: number, length: number, random: RandomSource): Buffer {
  if (group === X25519 && length === 32) {
    const jwk = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
    return Buffer.from(jwk.x!, 'base64url');
  }
  if (group === SECP256R1 && length === 65) {
    const ecdh = createECDH('prime256v1');
    return ecdh.generateKeys();
  }
  if (group === X25519MLKEM768 && length === MLKEM_CIPHERTEXT + 32) {
    // The ML-KEM ciphertext looks random to anyone without the client's key; the X25519 half is real.
    return Buffer.concat([random(MLKEM_CIPHERTEXT), keyShareFor(X25519, 32, random)]);
  }
  return random(length);
}

function extensionFor(type: number, hex: string, random: RandomSource): HelloExtension {
  const data = Buffer.from(hex, 'hex');
  if (type !== KEY_SHARE || data.length < 4) return { type, data };
  const group = data.readUInt16BE(0);
  const length = data.readUInt16BE(2);
  const key = keyShareFor(group, length, random);
  const out = Buffer.alloc(4 + key.length);
  out.writeUInt16BE(group, 0);
  out.writeUInt16BE(key.length, 2);
  key.copy(out, 4);
  return { type, data: out };
}

/** A whole number in [min, max], uniformly. */
function between(min: number, max: number, random: RandomSource): number {
  if (max <= min) return min;
  return min + (random(4).readUInt32LE(0) % (max - min + 1));
}

/**
 * Our answer's layout for a hello of `kind`: the site's extensions (fresh key shares), the site's
 * TLS 1.3 cipher when it chose one (else the client's first), and one record whose wire size is
 * within the site's observed range of first-flight bytes. Without a measured shape for this kind,
 * the other kind's shape is used; without any, the fallback (2500..4699 bytes, the order key_share,
 * supported_versions).
 */
export function answerLayout(
  profile: SiteProfile | undefined,
  kind: HelloKind,
  clientCipher: number,
  random: RandomSource,
): AnswerLayout {
  const shape = profile?.shapes[kind] ?? profile?.shapes[kind === 'modern' ? 'classic' : 'modern'];
  if (shape === undefined) {
    return { extensions: undefined, cipherSuite: clientCipher, payloadLength: randomPayloadLength(random) };
  }
  const wire = between(shape.flightBytes.min, shape.flightBytes.max, random);
  // A classic hello offers no post-quantum group: answering with one would be a protocol error a
  // censor can see, so the other shape's hybrid share becomes an X25519 one, as the site would do.
  const extensions = shape.extensions.map((e) =>
    kind === 'classic' && e.type === KEY_SHARE && e.data.startsWith('11ec')
      ? { type: e.type, data: X25519_SHARE_HEX }
      : e,
  );
  const payloadLength = Math.min(MAX_RECORD_PAYLOAD, Math.max(1, wire - RECORD_HEADER_LEN));
  const tls13 = shape.cipherSuite >= 0x1301 && shape.cipherSuite <= 0x1303;
  return {
    extensions: extensions.map((e) => extensionFor(e.type, e.data, random)),
    cipherSuite: tls13 ? shape.cipherSuite : clientCipher,
    payloadLength,
  };
}

/**
 * Which of the two app hello shapes a hello is: 'modern' offers an X25519MLKEM768 key share.
 * Scans the key_share extension of a complete ClientHello record; anything unparsable is 'classic'.
 */
export function helloKind(hello: Buffer): HelloKind {
  // record header (5) | handshake header (4) | version (2) | random (32) | session id | suites | comp
  let p = 5 + 4 + 2 + 32;
  if (p >= hello.length) return 'classic';
  p += 1 + hello[p]!;
  if (p + 2 > hello.length) return 'classic';
  p += 2 + hello.readUInt16BE(p);
  if (p + 1 > hello.length) return 'classic';
  p += 1 + hello[p]!;
  if (p + 2 > hello.length) return 'classic';
  const end = Math.min(hello.length, p + 2 + hello.readUInt16BE(p));
  p += 2;
  while (p + 4 <= end) {
    const type = hello.readUInt16BE(p);
    const len = hello.readUInt16BE(p + 2);
    if (type === KEY_SHARE) {
      let q = p + 6;
      const stop = Math.min(end, p + 4 + len);
      while (q + 4 <= stop) {
        if (hello.readUInt16BE(q) === X25519MLKEM768) return 'modern';
        q += 4 + hello.readUInt16BE(q + 2);
      }
      return 'classic';
    }
    p += 4 + len;
  }
  return 'classic';
}
