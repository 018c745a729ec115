// Node checks a raw Buffer key on every createCipheriv/createHmac call (a few microseconds each);
// a KeyObject is checked once. Secrets live as long as the user table that holds them, so their
// KeyObjects are cached by buffer identity and go away with it.
import { createSecretKey, type KeyObject } from 'node:crypto';

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
