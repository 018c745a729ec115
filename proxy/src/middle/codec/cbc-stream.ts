// AES-256-CBC as the middle-end connection uses it (§6.7): no padding scheme and one chain per
// direction for the whole connection, so the last ciphertext block of one write is the IV of the
// next. The cipher is opened once and only ever fed whole 16-byte blocks.
import { type Cipheriv, createCipheriv, createDecipheriv, type Decipheriv } from 'node:crypto';
import { oneOffKey } from '../../protocol/key-objects.js';

export interface CbcKey {
  readonly key: Buffer;
  readonly iv: Buffer;
}

const BLOCK = 16;

export class CbcStream {
  private readonly cipher: Cipheriv | Decipheriv;

  private constructor(cipher: Cipheriv | Decipheriv) {
    cipher.setAutoPadding(false);
    this.cipher = cipher;
  }

  static encrypting(k: CbcKey): CbcStream {
    return new CbcStream(createCipheriv('aes-256-cbc', oneOffKey(k.key), k.iv));
  }

  static decrypting(k: CbcKey): CbcStream {
    return new CbcStream(createDecipheriv('aes-256-cbc', oneOffKey(k.key), k.iv));
  }

  /** Continue the chain over whole blocks; returns as many bytes as it was given, in a new buffer. */
  update(blocks: Uint8Array): Buffer {
    if (blocks.length % BLOCK !== 0) {
      throw new RangeError(`CBC input must be whole 16-byte blocks, got ${blocks.length} bytes`);
    }
    return this.cipher.update(blocks);
  }
}
