// The replay cache's core: every authenticated handshake of the last REPLAY_WINDOW, exactly.
//
// An entry is a 64-bit fingerprint of the handshake's replay key (the first 8 bytes of a key that
// only a secret holder can produce: h[8:56] of an obfuscated2 header, random[0:16] of a fake-TLS
// hello). A fresh handshake is refused by mistake only when its fingerprint equals one of the
// N remembered ones: probability N / 2^64 per check (2.3e-13 at 4,194,304 entries).
//
// Entries are never evicted by volume: they live in time generations (window / GENERATIONS each),
// and a whole generation is dropped only when its newest entry is older than the window. So a
// remembered handshake is kept for at least the window and at most window + window/GENERATIONS.
// When `capacity` entries are remembered the cache is full and a new handshake cannot be
// remembered: it is refused ('full'), the fail-closed choice, because forgetting a young entry would
// let its replay through. Only secret holders can fill it (nothing unauthenticated is recorded).
//
// Memory: a generation is an open-addressed table of 8-byte slots kept at most half full, doubling
// as it grows: 16 to 32 bytes per entry, so at most 128 MiB at the default capacity of 4,194,304
// (24 handshakes per second, sustained over the default two-day window).

/** Generations per window: a generation's entries expire together. */
export const GENERATIONS = 8;
/** Largest fill of a table before it doubles (linear probing stays short below one half). */
const MAX_LOAD = 0.5;
const INITIAL_SLOTS = 1024;

export type ReplayVerdict = 'fresh' | 'replay' | 'full';

/** The fingerprint of a replay key: two 32-bit words, never both zero (zero marks a free slot). */
export function fingerprint(key: Buffer): [number, number] {
  const lo = key.readUInt32LE(0);
  const hi = key.readUInt32LE(4);
  return lo === 0 && hi === 0 ? [1, 0] : [lo, hi];
}

/** A set of 64-bit fingerprints in a typed array: no per-entry objects for the garbage collector. */
class FingerprintSet {
  #slots = new Uint32Array(INITIAL_SLOTS * 2);
  #mask = INITIAL_SLOTS - 1;
  size = 0;

  #find(lo: number, hi: number): number {
    // The fingerprint is already uniformly random; its low bits pick the slot.
    let i = (lo ^ (hi >>> 7)) & this.#mask;
    const s = this.#slots;
    for (;;) {
      const a = s[2 * i]!;
      const b = s[2 * i + 1]!;
      if ((a === lo && b === hi) || (a === 0 && b === 0)) return i;
      i = (i + 1) & this.#mask;
    }
  }

  has(lo: number, hi: number): boolean {
    const i = this.#find(lo, hi);
    return this.#slots[2 * i] !== 0 || this.#slots[2 * i + 1] !== 0;
  }

  add(lo: number, hi: number): void {
    if ((this.size + 1) / (this.#mask + 1) > MAX_LOAD) this.#grow();
    const i = this.#find(lo, hi);
    if (this.#slots[2 * i] !== 0 || this.#slots[2 * i + 1] !== 0) return;
    this.#slots[2 * i] = lo;
    this.#slots[2 * i + 1] = hi;
    this.size++;
  }

  #grow(): void {
    const old = this.#slots;
    this.#slots = new Uint32Array(old.length * 2);
    this.#mask = old.length - 1;
    this.size = 0;
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] !== 0 || old[i + 1] !== 0) this.add(old[i]!, old[i + 1]!);
    }
  }

  *entries(): Generator<[number, number]> {
    const s = this.#slots;
    for (let i = 0; i < s.length; i += 2) if (s[i] !== 0 || s[i + 1] !== 0) yield [s[i]!, s[i + 1]!];
  }

  get bytes(): number {
    return this.#slots.byteLength;
  }
}

interface Generation {
  readonly set: FingerprintSet;
  /** Time of the first and of the latest entry (ms). */
  readonly firstAt: number;
  lastAt: number;
}

export interface ReplayWindowOptions {
  readonly capacity: number;
  readonly windowMs: number;
  readonly now?: () => number;
}

export class ReplayWindow {
  readonly capacity: number;
  readonly windowMs: number;
  readonly #span: number;
  readonly #now: () => number;
  readonly #generations: Generation[] = [];
  #size = 0;

  constructor(opts: ReplayWindowOptions) {
    this.capacity = opts.capacity;
    this.windowMs = opts.windowMs;
    this.#span = Math.max(1, Math.floor(opts.windowMs / GENERATIONS));
    this.#now = opts.now ?? Date.now;
  }

  /** Remembers `key` unless it was seen within the window ('replay') or the cache is full. */
  check(key: Buffer): ReplayVerdict {
    const [lo, hi] = fingerprint(key);
    return this.checkFingerprint(lo, hi);
  }

  /** check() for a fingerprint made by fingerprint() (workers send fingerprints, not keys). */
  checkFingerprint(lo: number, hi: number): ReplayVerdict {
    const now = this.#now();
    this.#expire(now);
    for (const g of this.#generations) if (g.set.has(lo, hi)) return 'replay';
    if (this.#size >= this.capacity) return 'full';
    this.#insert(lo, hi, now);
    return 'fresh';
  }

  /** Puts back an entry remembered at `atMs` (from the file kept across restarts). */
  restore(lo: number, hi: number, atMs: number): void {
    const now = this.#now();
    if (now - atMs >= this.windowMs || this.#size >= this.capacity) return;
    if (this.#generations.some((g) => g.set.has(lo, hi))) return;
    this.#insert(lo, hi, atMs);
  }

  #insert(lo: number, hi: number, at: number): void {
    let g = this.#generations.at(-1);
    if (g === undefined || at - g.firstAt >= this.#span) {
      g = { set: new FingerprintSet(), firstAt: at, lastAt: at };
      this.#generations.push(g);
    }
    g.set.add(lo, hi);
    // A clock that stepped back must not make an entry expire early: keep the latest time.
    g.lastAt = Math.max(g.lastAt, at);
    this.#size++;
  }

  #expire(now: number): void {
    while (this.#generations.length > 0 && now - this.#generations[0]!.lastAt >= this.windowMs) {
      this.#size -= this.#generations.shift()!.set.size;
    }
  }

  get size(): number {
    this.#expire(this.#now());
    return this.#size;
  }

  /** Age of the oldest remembered handshake (ms), 0 when empty. */
  oldestAgeMs(): number {
    this.#expire(this.#now());
    const g = this.#generations[0];
    return g === undefined ? 0 : Math.max(0, this.#now() - g.firstAt);
  }

  /** Bytes held by the tables. */
  get bytes(): number {
    return this.#generations.reduce((sum, g) => sum + g.set.bytes, 0);
  }

  /** Every entry with the time to keep it from (its generation's latest, so never too early). */
  *entries(): Generator<[lo: number, hi: number, atMs: number]> {
    this.#expire(this.#now());
    for (const g of this.#generations) for (const [lo, hi] of g.set.entries()) yield [lo, hi, g.lastAt];
  }
}
