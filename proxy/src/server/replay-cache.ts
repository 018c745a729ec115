// Remembers recent handshakes so that a recorded one replayed by a prober is refused
// (MTPROTO-PROXY.md §2.6, §4.9). One cache lives in the primary and serves every worker, so a
// replay that lands on another worker, or after a worker restart, is still caught. Bounded in
// entries and in age: the oldest fall out first.

export interface ReplayGuard {
  /** True when `key` was seen before; otherwise remembers it and returns false. */
  seen(key: Buffer): boolean | Promise<boolean>;
}

export class ReplayCache implements ReplayGuard {
  /** key -> time it was first seen (ms); a Map iterates in insertion order, oldest first. */
  readonly #keys = new Map<string, number>();
  readonly #capacity: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;

  constructor(capacity = 262_144, maxAgeMs = 2 * 24 * 3600 * 1000, now: () => number = Date.now) {
    this.#capacity = capacity;
    this.#maxAgeMs = maxAgeMs;
    this.#now = now;
  }

  seen(key: Buffer): boolean {
    return this.seenEncoded(key.toString('base64'));
  }

  seenEncoded(k: string): boolean {
    const now = this.#now();
    this.#expire(now);
    if (this.#keys.has(k)) return true;
    this.#keys.set(k, now);
    if (this.#keys.size > this.#capacity) {
      const oldest = this.#keys.keys().next().value;
      if (oldest !== undefined) this.#keys.delete(oldest);
    }
    return false;
  }

  #expire(now: number): void {
    for (const [k, at] of this.#keys) {
      if (now - at < this.#maxAgeMs) break;
      this.#keys.delete(k);
    }
  }

  get size(): number {
    return this.#keys.size;
  }
}
