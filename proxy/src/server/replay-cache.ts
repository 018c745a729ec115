// Remembers recent handshakes so that a recorded one replayed by a prober is refused
// (MTPROTO-PROXY.md §2.6, §4.9). One cache lives in the primary and serves every worker, so a
// replay that lands on another worker, or after a worker restart, is still caught. Bounded in
// entries and in age (REPLAY_CACHE_SIZE, REPLAY_WINDOW): the oldest fall out first. Keys: h[8:56]
// for plain obfuscated2 (48 bytes), random[0:16] for fake-TLS hellos (16 bytes), so the two kinds
// never collide. About 150 bytes per entry in the primary (key string + Map slot).

export interface ReplayGuard {
  /** True when `key` was seen before; otherwise remembers it and returns false. */
  seen(key: Buffer): boolean | Promise<boolean>;
  /**
   * Remembers `key` without asking: the random of a refused fake-TLS hello is recorded too (as the
   * official proxy does), so that a hello refused once is never accepted later.
   */
  record(key: Buffer): void;
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

  record(key: Buffer): void {
    this.seenEncoded(key.toString('base64'));
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
