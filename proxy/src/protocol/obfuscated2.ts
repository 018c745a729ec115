// Obfuscated2: the 64-byte header every client opens with, and the one we send to a DC.
// Pure code: bytes in, keys and ciphers out. Layout and key schedule: docs/protocol.md §2 and §5.
import { type Cipheriv, createCipheriv, createHash, hash } from 'node:crypto';
import { ecb } from '@noble/ciphers/aes.js';
import { ProtocolError } from './errors.js';
import { oneOffKey } from './key-objects.js';

export const HEADER_LEN = 64;
const PREKEY_START = 8;
const PREKEY_END = 40;
const IV_END = 56;
const TAG_POS = 56;
const DC_POS = 60;

export type Transport = 'abridged' | 'intermediate' | 'padded';

const TAG_WORDS: Record<Transport, number> = {
  abridged: 0xefefefef,
  intermediate: 0xeeeeeeee,
  padded: 0xdddddddd,
};

export function transportTag(transport: Transport): Buffer {
  const tag = Buffer.alloc(4);
  tag.writeUInt32LE(TAG_WORDS[transport]);
  return tag;
}

function transportFromTagWord(word: number): Transport | undefined {
  switch (word) {
    case 0xefefefef:
      return 'abridged';
    case 0xeeeeeeee:
      return 'intermediate';
    case 0xdddddddd:
      return 'padded';
    default:
      return undefined;
  }
}

export interface CtrKey {
  readonly key: Buffer;
  readonly iv: Buffer;
}

/** AES-256-CTR with the IV as a 128-bit big-endian counter; the stream starts at offset 0. */
export function ctrCipher(k: CtrKey): Cipheriv {
  return createCipheriv('aes-256-ctr', oneOffKey(k.key), k.iv);
}

/** A client header that matched one of our secrets. */
export interface ClientHeader {
  readonly secretIndex: number;
  readonly transport: Transport;
  /** Signed DC index: negative = media DC, 10000+ = test DCs. */
  readonly dc: number;
  /** client -> proxy; `decryptor` has already consumed the 64 header bytes. */
  readonly decrypt: CtrKey;
  /** proxy -> client; the stream starts at the first byte we send. */
  readonly encrypt: CtrKey;
  readonly decryptor: Cipheriv;
  /** h[8:56], the part of the header a replayed connection repeats. */
  readonly replayKey: Buffer;
}

function reversed(bytes: Buffer): Buffer {
  return Buffer.from(bytes).reverse();
}

/** Key schedule of the client leg for one candidate secret (§2.2). */
export function deriveClientKeys(header: Buffer, secret: Buffer): { decrypt: CtrKey; encrypt: CtrKey } {
  const r = reversed(header.subarray(PREKEY_START, IV_END));
  return {
    decrypt: {
      key: createHash('sha256').update(header.subarray(PREKEY_START, PREKEY_END)).update(secret).digest(),
      iv: Buffer.from(header.subarray(PREKEY_END, IV_END)),
    },
    encrypt: {
      key: createHash('sha256').update(r.subarray(0, 32)).update(secret).digest(),
      iv: r.subarray(32, 48),
    },
  };
}

/**
 * The cheap test of one candidate secret: the decrypt key is SHA-256(prekey || secret), and the
 * protocol tag sits in the fourth AES-CTR block (bytes 48..63), so one hash and one AES block
 * (counter = IV + 3) tell whether the secret fits. No cipher object and no key object are made
 * for a wrong secret: with 144 secrets a garbage header costs 144 hashes and 144 block encryptions
 * (about a third of building a CTR cipher per secret; `npm run bench -- --attack`).
 */
function trialTag(header: Buffer, secret: Buffer, scratch: Buffer, counter: Buffer): number {
  let input = scratch;
  if (secret.length === 16) secret.copy(scratch, PREKEY_END - PREKEY_START);
  else input = Buffer.concat([scratch.subarray(0, PREKEY_END - PREKEY_START), secret]);
  const key = hash('sha256', input, 'buffer');
  const block = ecb(key, { disablePadding: true }).encrypt(counter);
  // The tag is plaintext word 56..59 = ciphertext XOR keystream at block offset 8.
  return (
    (header.readUInt32LE(TAG_POS) ^
      ((block[8]! | (block[9]! << 8) | (block[10]! << 16) | (block[11]! << 24)) >>> 0)) >>>
    0
  );
}

/** IV + 3 as a 128-bit big-endian counter: the counter of the block holding the tag. */
function tagCounter(header: Buffer): Buffer {
  const counter = Buffer.from(header.subarray(PREKEY_END, IV_END));
  let carry = 3;
  for (let i = 15; i >= 0 && carry > 0; i--) {
    const v = counter[i]! + carry;
    counter[i] = v & 0xff;
    carry = v >> 8;
  }
  return counter;
}

/**
 * Try every secret on a received header, `tryFirst` (an index, e.g. the secret that last matched
 * from the same source) before the others. Returns undefined when none yields a known protocol
 * tag: the caller decides between masking and silence. A wrong secret gives a random tag, so a
 * false match has a chance of about 3 in 2^32 per secret. Ciphers are built for the match only.
 */
export function parseClientHeader(
  header: Buffer,
  secrets: readonly Buffer[],
  tryFirst?: number,
): ClientHeader | undefined {
  if (header.length !== HEADER_LEN) {
    throw new ProtocolError(
      'ERR_O2_HEADER_LENGTH',
      `obfuscated2 header must be 64 bytes, got ${header.length}`,
    );
  }
  const scratch = Buffer.allocUnsafe(PREKEY_END - PREKEY_START + 16);
  header.copy(scratch, 0, PREKEY_START, PREKEY_END);
  const counter = tagCounter(header);
  const first = tryFirst !== undefined && tryFirst >= 0 && tryFirst < secrets.length ? tryFirst : -1;
  for (let n = first < 0 ? 0 : -1; n < secrets.length; n++) {
    const i = n < 0 ? first : n;
    if (n >= 0 && i === first) continue;
    const secret = secrets[i]!;
    if (transportFromTagWord(trialTag(header, secret, scratch, counter)) === undefined) continue;
    const keys = deriveClientKeys(header, secret);
    const decryptor = ctrCipher(keys.decrypt);
    const plain = decryptor.update(header);
    const transport = transportFromTagWord(plain.readUInt32LE(TAG_POS));
    if (transport === undefined) continue;
    return {
      secretIndex: i,
      transport,
      dc: plain.readInt16LE(DC_POS),
      decrypt: keys.decrypt,
      encrypt: keys.encrypt,
      decryptor,
      replayKey: Buffer.from(header.subarray(PREKEY_START, IV_END)),
    };
  }
  return undefined;
}

const FORBIDDEN_FIRST_WORDS = new Set([
  0x44414548, // "HEAD"
  0x54534f50, // "POST"
  0x20544547, // "GET "
  0x4954504f, // "OPTI"
  0x02010316, // 16 03 01 02: a TLS handshake record
  0xdddddddd,
  0xeeeeeeee,
]);

/**
 * The rules a random header must satisfy so that nothing on the path mistakes it for HTTP, TLS,
 * an unobfuscated transport or the "full" transport (§2.5).
 */
export function isAcceptableRandomHeader(init: Buffer): boolean {
  if (init[0] === 0xef) return false;
  if (FORBIDDEN_FIRST_WORDS.has(init.readUInt32LE(0))) return false;
  return init.readUInt32LE(4) !== 0;
}

export type RandomSource = (size: number) => Buffer;

export interface DcHeader {
  /** What goes on the wire: init[0:56] in clear, then the encrypted tag and DC bytes. */
  readonly wire: Buffer;
  readonly init: Buffer;
  /** proxy -> DC; `encryptor` has already consumed the 64 header bytes. */
  readonly encrypt: CtrKey;
  readonly encryptor: Cipheriv;
  /** DC -> proxy. */
  readonly decrypt: CtrKey;
}

const MAX_HEADER_DRAWS = 1000;

/**
 * Draw the proxy's own header towards a DC (§5.2). With `fastModeKey` (the client leg's encrypt
 * key/IV) the DC answers with exactly the stream the client expects, so DC -> client bytes are
 * relayed without touching them (§5.3).
 */
export function createDcHeader(random: RandomSource, transport: Transport, fastModeKey?: CtrKey): DcHeader {
  for (let draw = 0; draw < MAX_HEADER_DRAWS; draw++) {
    const init = Buffer.from(random(HEADER_LEN));
    if (!isAcceptableRandomHeader(init)) continue;
    if (fastModeKey) {
      reversed(Buffer.concat([fastModeKey.key, fastModeKey.iv])).copy(init, PREKEY_START);
    }
    transportTag(transport).copy(init, TAG_POS);
    return dcHeaderFromInit(init);
  }
  throw new ProtocolError('ERR_O2_RANDOM', 'random source never produced an acceptable header');
}

/** The deterministic half of createDcHeader, separate so vectors can pin it. */
export function dcHeaderFromInit(init: Buffer): DcHeader {
  const encrypt: CtrKey = {
    key: Buffer.from(init.subarray(PREKEY_START, PREKEY_END)),
    iv: Buffer.from(init.subarray(PREKEY_END, IV_END)),
  };
  const r = reversed(init.subarray(PREKEY_START, IV_END));
  const decrypt: CtrKey = { key: r.subarray(0, 32), iv: r.subarray(32, 48) };
  const encryptor = ctrCipher(encrypt);
  const encrypted = encryptor.update(init);
  const wire = Buffer.concat([init.subarray(0, TAG_POS), encrypted.subarray(TAG_POS)]);
  return { wire, init, encrypt, encryptor, decrypt };
}

export interface ClientSideHeader {
  readonly wire: Buffer;
  /** client -> proxy, already advanced past the header. */
  readonly encryptor: Cipheriv;
  /** proxy -> client. */
  readonly decryptor: Cipheriv;
}

/**
 * The client's side of the handshake, for stand-in clients in tests and the benchmark: the same
 * construction as a DC header, but keys hashed with the secret.
 */
export function createClientHeader(
  random: RandomSource,
  secret: Buffer,
  transport: Transport,
  dc: number,
): ClientSideHeader {
  for (let draw = 0; draw < MAX_HEADER_DRAWS; draw++) {
    const init = Buffer.from(random(HEADER_LEN));
    if (!isAcceptableRandomHeader(init)) continue;
    transportTag(transport).copy(init, TAG_POS);
    init.writeInt16LE(dc, DC_POS);
    // The proxy's decrypt keys are our encrypt keys and vice versa.
    const keys = deriveClientKeys(init, secret);
    const encryptor = ctrCipher(keys.decrypt);
    const encrypted = encryptor.update(init);
    const wire = Buffer.concat([init.subarray(0, TAG_POS), encrypted.subarray(TAG_POS)]);
    return { wire, encryptor, decryptor: ctrCipher(keys.encrypt) };
  }
  throw new ProtocolError('ERR_O2_RANDOM', 'random source never produced an acceptable header');
}
