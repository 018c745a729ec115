// Pre-crypto admission of handshakes (issue 13, item 2). A handshake that no secret opens costs a
// worker one trial per secret; a flooder without a secret can only ever produce such handshakes.
// So every source has a budget of failed trials, counted per host (/32 IPv4, /64 IPv6) and per
// network (/24 IPv4, /48 IPv6), as token buckets. A source whose budget is spent gets no full
// trial: only the secret that last matched from that same host is tried (one hash, one AES block),
// so a real client behind the same NAT as a flooder keeps working, and the flood costs next to
// nothing. A host that authenticated recently is not held to its network's budget, only its own;
// a new client in a network that is flooding right now waits until the flood stops. Pure code: addresses and a clock in, decisions out.
import { isIP } from 'node:net';
import type { TrialPlan, TrialThrottle, UnidentifiedCap } from '../session/ports.js';

export interface ThrottleRate {
  /** Failed trials allowed at once. */
  readonly burst: number;
  /** Budget regained per second. */
  readonly perSecond: number;
}

export interface HandshakeThrottleOptions {
  /** Per host: /32 for IPv4, /64 for IPv6. */
  readonly host: ThrottleRate;
  /** Per network: /24 for IPv4, /48 for IPv6. */
  readonly network: ThrottleRate;
  /** Most sources remembered per table; the least recently seen is forgotten past it. */
  readonly maxSources: number;
  readonly now?: () => number;
}

/** Budget per source at the default FAILED_HANDSHAKE_RATE of 10 a second. */
export function throttleOptions(hostPerSecond: number, maxSources = 65_536): HandshakeThrottleOptions {
  return {
    host: { burst: hostPerSecond * 4, perSecond: hostPerSecond },
    network: { burst: hostPerSecond * 16, perSecond: hostPerSecond * 4 },
    maxSources,
  };
}

interface Bucket {
  tokens: number;
  at: number;
}

/** The per-host and per-network keys of an address (IPv4-mapped IPv6 counts as IPv4). */
export function sourceKeys(address: string): { host: string; network: string } {
  const lower = address.toLowerCase();
  const v4 = lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower;
  if (isIP(v4) === 4) {
    return { host: v4, network: `${v4.slice(0, v4.lastIndexOf('.'))}.0/24` };
  }
  const groups = expandIpv6(v4);
  return { host: `${groups.slice(0, 4).join(':')}::/64`, network: `${groups.slice(0, 3).join(':')}::/48` };
}

function expandIpv6(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return groups.map((g) => (Number.parseInt(g, 16) || 0).toString(16));
}

/** A Map that forgets its least recently used entry past `max` entries. */
class BoundedMap<V> {
  readonly #map = new Map<string, V>();
  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }
  get(key: string): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }
  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }
  get size(): number {
    return this.#map.size;
  }
}

export class HandshakeThrottle implements TrialThrottle {
  readonly #o: HandshakeThrottleOptions;
  readonly #now: () => number;
  readonly #hosts: BoundedMap<Bucket>;
  readonly #networks: BoundedMap<Bucket>;
  readonly #lastMatch: BoundedMap<number>;
  /** The keys of the address last asked about: plan() and then failed() or matched() ask twice. */
  #lastAddress: string | undefined;
  #lastKeys: { host: string; network: string } = { host: '', network: '' };

  constructor(options: HandshakeThrottleOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#hosts = new BoundedMap(options.maxSources);
    this.#networks = new BoundedMap(options.maxSources);
    this.#lastMatch = new BoundedMap(options.maxSources);
  }

  /** What to try for a handshake from `address`, decided before any crypto. */
  plan(address: string): TrialPlan {
    const keys = this.#keys(address);
    const first = this.#lastMatch.get(keys.host);
    const now = this.#now();
    // A host that authenticated recently answers only for its own budget: a flooder elsewhere in
    // its /24 (or /48) must not lock out the real clients already using the proxy from there.
    const ok =
      this.#level(this.#hosts, keys.host, this.#o.host, now) >= 1 &&
      (first !== undefined || this.#level(this.#networks, keys.network, this.#o.network, now) >= 1);
    return { kind: ok ? 'full' : 'remembered-only', first };
  }

  /** A handshake from `address` matched secret `index`. */
  matched(address: string, index: number): void {
    this.#lastMatch.set(this.#keys(address).host, index);
  }

  /** A handshake from `address` matched no secret: it spends one unit of both budgets. */
  failed(address: string): void {
    const keys = this.#keys(address);
    const now = this.#now();
    this.#spend(this.#hosts, keys.host, this.#o.host, now);
    this.#spend(this.#networks, keys.network, this.#o.network, now);
  }

  /** Sources in the host table (a gauge for metrics and tests). */
  get trackedHosts(): number {
    return this.#hosts.size;
  }

  #keys(address: string): { host: string; network: string } {
    if (address !== this.#lastAddress) {
      this.#lastKeys = sourceKeys(address);
      this.#lastAddress = address;
    }
    return this.#lastKeys;
  }

  #level(table: BoundedMap<Bucket>, key: string, rate: ThrottleRate, now: number): number {
    const b = table.get(key);
    return b === undefined ? rate.burst : refill(b, rate, now);
  }

  #spend(table: BoundedMap<Bucket>, key: string, rate: ThrottleRate, now: number): void {
    const b = table.get(key);
    if (b === undefined) table.set(key, { tokens: Math.max(0, rate.burst - 1), at: now });
    else b.tokens = Math.max(0, refill(b, rate, now) - 1);
  }
}

/** Brings a bucket up to `now`; returns its tokens. */
function refill(b: Bucket, rate: ThrottleRate, now: number): number {
  b.tokens = Math.min(rate.burst, b.tokens + ((now - b.at) / 1000) * rate.perSecond);
  b.at = now;
  return b.tokens;
}

/**
 * The handshakes of a worker not identified yet (no secret decided). Past `max`, the oldest is
 * told to give up (it fails like any bad handshake), so a crowd of silent or trickling
 * connections cannot keep newer, fast clients from being read. O(1) per connection.
 */
export class UnidentifiedHandshakes implements UnidentifiedCap {
  readonly #max: number;
  readonly #waiting = new Set<() => void>();
  #evicted = 0;

  constructor(max: number) {
    this.#max = max;
  }

  /** Registers a new handshake; returns the function to call once it is identified or gone. */
  enter(evict: () => void): () => void {
    if (this.#max > 0 && this.#waiting.size >= this.#max) {
      const oldest = this.#waiting.values().next().value!;
      this.#waiting.delete(oldest);
      this.#evicted++;
      oldest();
    }
    this.#waiting.add(evict);
    return () => {
      this.#waiting.delete(evict);
    };
  }

  get size(): number {
    return this.#waiting.size;
  }

  get evicted(): number {
    return this.#evicted;
  }
}
