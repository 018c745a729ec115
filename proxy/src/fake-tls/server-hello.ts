// Fake TLS, second step (docs/protocol.md §4.7): the proxy's answer to an accepted ClientHello,
// three records in one write: ServerHello, ChangeCipherSpec, one application-data record of noise
// standing in for the encrypted certificate flight. Its random is a MAC the client checks.
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { secretKeyObject } from '../protocol/key-objects.js';
import type { RandomSource } from '../protocol/obfuscated2.js';
import {
  CHANGE_CIPHER_SPEC,
  MAX_RECORD_PAYLOAD,
  RECORD_APPLICATION_DATA,
  RECORD_HANDSHAKE,
  RECORD_HEADER_LEN,
} from './records.js';

const SERVER_RANDOM_POS = 11;
const SERVER_RANDOM_LEN = 32;
const HANDSHAKE_SERVER_HELLO = 0x02;
const X25519_KEY_LEN = 32;
// key_share (0x0033): entry of group x25519 (0x001d) with a 32-byte key; supported_versions
// (0x002b): TLS 1.3. This order (key_share first) is the official proxy's default and the one the
// vectors were made with.
const KEY_SHARE_PREFIX = Buffer.from([0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20]);
const SUPPORTED_VERSIONS = Buffer.from([0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]);
const EXTENSIONS_LEN = KEY_SHARE_PREFIX.length + X25519_KEY_LEN + SUPPORTED_VERSIONS.length;

const EMPTY_KEY = Buffer.alloc(0);

/** Default fake certificate flight size: 2500..4699 bytes, the range mtg uses when it cannot measure. */
const DEFAULT_PAYLOAD_MIN = 2500;
const DEFAULT_PAYLOAD_SPAN = 2200;

export interface HelloExtension {
  readonly type: number;
  readonly data: Buffer;
}

export interface ServerHelloParams {
  /** The 32 bytes of the ClientHello random as received (AcceptedHello.clientRandom). */
  readonly clientRandom: Buffer;
  /** Echoed as is (AcceptedHello.sessionId), 0..32 bytes. */
  readonly sessionId: Buffer;
  /** The secret whose MAC matched the hello. */
  readonly secret: Buffer;
  /** AcceptedHello.cipherSuite; 0x1301 when omitted. */
  readonly cipherSuite?: number;
  /** A 32-byte x25519 public key; a fresh one from x25519KeyShare() when omitted. */
  readonly keyShare?: Buffer;
  /**
   * The ServerHello's extensions in order, bodies included (a site profile's layout, see
   * answerLayout in site-profile.ts); key_share (x25519, `keyShare`) then supported_versions
   * when omitted.
   */
  readonly extensions?: readonly HelloExtension[];
  /** Size of the noise record, 1..16384; randomPayloadLength(random) when omitted. */
  readonly payloadLength?: number;
  /** Source of the noise (and of the payload length when not given). */
  readonly random: RandomSource;
}

/**
 * A real x25519 public key, so the ServerHello cannot be told apart by an invalid point. Costs
 * about 20 µs (one key pair; measured on Node 24), less than the two HMACs of the handshake, so
 * there is no pool.
 */
function x25519KeyShare(): Buffer {
  const jwk = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}

export function randomPayloadLength(random: RandomSource): number {
  return DEFAULT_PAYLOAD_MIN + (random(4).readUInt32LE(0) % DEFAULT_PAYLOAD_SPAN);
}

/**
 * The three records of §4.7 in one buffer, ready for one write. The server random is
 * HMAC-SHA256(secret, clientRandom || the three records with the random zeroed).
 */
export function buildServerHello(params: ServerHelloParams): Buffer {
  const { clientRandom, sessionId, secret, random } = params;
  const keyShare = params.keyShare ?? (params.extensions === undefined ? x25519KeyShare() : EMPTY_KEY);
  const payloadLength = params.payloadLength ?? randomPayloadLength(random);
  if (params.extensions === undefined && keyShare.length !== X25519_KEY_LEN)
    throw new RangeError('key share must be 32 bytes');
  if (sessionId.length > 32) throw new RangeError('session id must be at most 32 bytes');
  if (!(Number.isInteger(payloadLength) && payloadLength >= 1 && payloadLength <= MAX_RECORD_PAYLOAD)) {
    throw new RangeError(`payload length must be 1..${MAX_RECORD_PAYLOAD}, got ${payloadLength}`);
  }

  const extensions = params.extensions;
  const extensionsLen =
    extensions === undefined ? EXTENSIONS_LEN : extensions.reduce((n, e) => n + 4 + e.data.length, 0);
  if (extensionsLen > 0xffff - 128) throw new RangeError('ServerHello extensions too long');
  const helloBodyLen = 2 + SERVER_RANDOM_LEN + 1 + sessionId.length + 2 + 1 + 2 + extensionsLen;
  const helloRecordLen = 4 + helloBodyLen;
  const total =
    RECORD_HEADER_LEN + helloRecordLen + CHANGE_CIPHER_SPEC.length + RECORD_HEADER_LEN + payloadLength;
  const out = Buffer.alloc(total);
  let p = 0;
  p = out.writeUInt8(RECORD_HANDSHAKE, p);
  p = out.writeUInt16BE(0x0303, p);
  p = out.writeUInt16BE(helloRecordLen, p);
  p = out.writeUInt8(HANDSHAKE_SERVER_HELLO, p);
  p = out.writeUIntBE(helloBodyLen, p, 3);
  p = out.writeUInt16BE(0x0303, p);
  p += SERVER_RANDOM_LEN; // zero for now: the MAC input
  p = out.writeUInt8(sessionId.length, p);
  p += sessionId.copy(out, p);
  p = out.writeUInt16BE(params.cipherSuite ?? 0x1301, p);
  p = out.writeUInt8(0, p); // compression: null
  p = out.writeUInt16BE(extensionsLen, p);
  if (extensions === undefined) {
    p += KEY_SHARE_PREFIX.copy(out, p);
    p += keyShare.copy(out, p);
    p += SUPPORTED_VERSIONS.copy(out, p);
  } else {
    for (const e of extensions) {
      p = out.writeUInt16BE(e.type, p);
      p = out.writeUInt16BE(e.data.length, p);
      p += e.data.copy(out, p);
    }
  }
  p += CHANGE_CIPHER_SPEC.copy(out, p);
  p = out.writeUInt8(RECORD_APPLICATION_DATA, p);
  p = out.writeUInt16BE(0x0303, p);
  p = out.writeUInt16BE(payloadLength, p);
  const noise = random(payloadLength);
  if (noise.length !== payloadLength) throw new RangeError('random source returned the wrong size');
  noise.copy(out, p);

  serverHelloMac(secret, clientRandom, out).copy(out, SERVER_RANDOM_POS);
  return out;
}

/** HMAC-SHA256(secret, clientRandom || answer), `answer` having its random zeroed. */
export function serverHelloMac(secret: Buffer, clientRandom: Buffer, answerRandomZeroed: Buffer): Buffer {
  return createHmac('sha256', secretKeyObject(secret))
    .update(clientRandom)
    .update(answerRandomZeroed)
    .digest();
}
