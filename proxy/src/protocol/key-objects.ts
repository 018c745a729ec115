// Node checks a raw Buffer key on every createCipheriv/createHmac call (a few microseconds each);
// a KeyObject is checked once. Secrets live as long as the user table that holds them, so their
// KeyObjects are cached by buffer identity and go away with it.
import { createHash, createSecretKey, type KeyObject } from 'node:crypto';

const cache = new WeakMap<Buffer, KeyObject>();

/** A KeyObject for a long-lived secret (a proxy secret used for HMACs), made once. */
export function secretKeyObject(secret: Buffer): KeyObject {
  let key = cache.get(secret);
  if (key === undefined) {
    key = createSecretKey(secret);
    cache.set(secret, key);
  }
  return key;
}

/** A KeyObject for a one-off key (a per-connection cipher key); cheaper than a raw Buffer key. */
export function oneOffKey(key: Buffer): KeyObject {
  return createSecretKey(key);
}

/**
 * HMAC-SHA256 with the key's inner and outer pads already hashed (RFC 2104): a hash state is
 * copied per message instead of building an HMAC from the key each time, which is what makes
 * trying many secrets on one ClientHello cheap. Made once per secret buffer, like secretKeyObject.
 */
export interface PrecomputedHmac {
  digest(parts: readonly Buffer[]): Buffer;
}

const HMAC_BLOCK = 64;
const hmacCache = new WeakMap<Buffer, PrecomputedHmac>();

export function precomputedHmacSha256(key: Buffer): PrecomputedHmac {
  let hmac = hmacCache.get(key);
  if (hmac !== undefined) return hmac;
  const block = Buffer.alloc(HMAC_BLOCK);
  (key.length > HMAC_BLOCK ? createHash('sha256').update(key).digest() : key).copy(block);
  const ipad = Buffer.allocUnsafe(HMAC_BLOCK);
  const opad = Buffer.allocUnsafe(HMAC_BLOCK);
  for (let i = 0; i < HMAC_BLOCK; i++) {
    ipad[i] = block[i]! ^ 0x36;
    opad[i] = block[i]! ^ 0x5c;
  }
  const inner = createHash('sha256').update(ipad);
  const outer = createHash('sha256').update(opad);
  hmac = {
    digest(parts) {
      const h = inner.copy();
      for (const part of parts) h.update(part);
      return outer.copy().update(h.digest()).digest();
    },
  };
  hmacCache.set(key, hmac);
  return hmac;
}
