// Bytes for tests of pure code: a random source that gives the same bytes on every run, and a
// fake-TLS hello re-signed after a test changed it (so it fails for the change, not the MAC).
import { createHash, createHmac } from 'node:crypto';
import type { RandomSource } from '../../proxy/src/protocol/obfuscated2.js';

/** SHA-256 of `seed/0`, `seed/1`, ... as one stream of bytes. */
export function seededRandom(seed: string): RandomSource {
  let counter = 0;
  return (size) => {
    const out = Buffer.alloc(size);
    for (let at = 0; at < size; at += 32) {
      createHash('sha256').update(`${seed}/${counter++}`).digest().copy(out, at);
    }
    return out;
  };
}

/** Puts a valid MAC for `secret` and `timestamp` into any one-record hello (docs/protocol.md §4.3). */
export function resign(hello: Buffer, secret: Buffer, timestamp: number): Buffer {
  const out = Buffer.from(hello);
  out.fill(0, 11, 43);
  const mac = createHmac('sha256', secret).update(out).digest();
  mac.writeUInt32LE((mac.readUInt32LE(28) ^ timestamp) >>> 0, 28);
  mac.copy(out, 11);
  return out;
}
