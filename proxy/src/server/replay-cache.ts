// Remembers recent handshake headers so that a recorded header replayed by a prober is refused
// (MTPROTO-PROXY.md §2.6). Bounded: the oldest entries fall out first.

export interface ReplayGuard {
  /** True when `key` was seen before; otherwise remembers it and returns false. */
  seen(key: Buffer): boolean;
}

export class ReplayCache implements ReplayGuard {
  readonly #keys = new Set<string>();
  readonly #capacity: number;

  constructor(capacity = 65536) {
    this.#capacity = capacity;
  }

  seen(key: Buffer): boolean {
    const k = key.toString('base64');
    if (this.#keys.has(k)) return true;
    this.#keys.add(k);
    if (this.#keys.size > this.#capacity) {
      // A Set iterates in insertion order, so the first key is the oldest.
      const oldest = this.#keys.values().next().value;
      if (oldest !== undefined) this.#keys.delete(oldest);
    }
    return false;
  }

  get size(): number {
    return this.#keys.size;
  }
}
