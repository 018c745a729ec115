// The client's side of the obfuscated2 handshake (docs/protocol.md §2): the 64-byte header a
// Telegram app opens with. The proxy only ever reads such headers; the stand-in clients of the
// tests and the benchmark write them.
import type { Cipheriv } from 'node:crypto';
import { ProtocolError } from '../../proxy/src/protocol/errors.js';
import {
  ctrCipher,
  dcHeaderFromInit,
  deriveClientKeys,
  HEADER_LEN,
  isAcceptableRandomHeader,
  type RandomSource,
  type Transport,
  transportTag,
} from '../../proxy/src/protocol/obfuscated2.js';

/** A header on the wire and the two ciphers of the client that sent it. */
export interface ClientSideHeader {
  readonly wire: Buffer;
  /** client -> proxy, already advanced past the header. */
  readonly encryptor: Cipheriv;
  /** proxy -> client. */
  readonly decryptor: Cipheriv;
}

const TAG_POS = 56;
const DC_POS = 60;

/** 64 random bytes that pass the rules for a header, with the tag and the DC index written in. */
function drawHeader(random: RandomSource, transport: Transport, dc: number): Buffer {
  for (let draw = 0; draw < 1000; draw++) {
    const init = Buffer.from(random(HEADER_LEN));
    if (!isAcceptableRandomHeader(init)) continue;
    transportTag(transport).copy(init, TAG_POS);
    init.writeInt16LE(dc, DC_POS);
    return init;
  }
  throw new ProtocolError('ERR_O2_RANDOM', 'random source never produced an acceptable header');
}

/** What an app sends for `secret`: the construction of a DC header, but keys hashed with the secret. */
export function createClientHeader(
  random: RandomSource,
  secret: Buffer,
  transport: Transport,
  dc: number,
): ClientSideHeader {
  const init = drawHeader(random, transport, dc);
  // The proxy's decrypt keys are our encrypt keys and vice versa.
  const keys = deriveClientKeys(init, secret);
  const encryptor = ctrCipher(keys.decrypt);
  const encrypted = encryptor.update(init);
  const wire = Buffer.concat([init.subarray(0, TAG_POS), encrypted.subarray(TAG_POS)]);
  return { wire, encryptor, decryptor: ctrCipher(keys.encrypt) };
}

/** The header a proxy writes towards a DC, with the DC index filled in: how tests reach a DC. */
export function createSecretlessHeader(
  random: RandomSource,
  transport: Transport,
  dc: number,
): ClientSideHeader {
  const h = dcHeaderFromInit(drawHeader(random, transport, dc));
  return { wire: h.wire, encryptor: h.encryptor, decryptor: ctrCipher(h.decrypt) };
}
