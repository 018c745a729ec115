// Per-user limits for the whole pod, kept by the primary: every worker asks it before letting an
// authenticated client through, so connection and unique-IP counts are per pod, not per worker.
// Every admission and release is O(1) amortised, however many addresses a user has: addresses
// with open connections are counted in one map, idle ones wait in another in the order they went
// idle (all of a user's share one window), so the expired ones are always at its front. IPv6
// addresses count per /64 (what one subscriber gets), and a user without a unique-IP limit has at
// most UNIQUE_IP_TRACK_CAP addresses tracked, for /stats.

import { limitKey } from '../admission/ip-limit.js';

import type { UserRefusal } from '../session/events.js';
import { periodKey } from './quota-period.js';
import type { User } from './users-file.js';

export type { UserRefusal };

/** Addresses tracked at most for a user without maxUniqueIps (only /stats reads them). */
export const UNIQUE_IP_TRACK_CAP = 4096;

interface UserState {
  user: User;
  connections: number;
  /** address key -> open connections from it (at least 1) */
  open: Map<string, number>;
  /** address key -> when its last connection closed (ms); oldest first */
  idle: Map<string, number>;
}

export interface UserFigures {
  readonly connections: number;
  readonly uniqueIps: number;
  readonly bytesUsed: number;
}

export class UserRegistry {
  readonly #state = new Map<string, UserState>();
  /** Bytes counted against each user's quota, kept across reloads (and restarts, by the caller). */
  readonly #used: Map<string, number>;
  /** The quota period each user's usage belongs to (quota-period.ts); a new one starts at zero. */
  readonly #periods: Map<string, string>;
  readonly #now: () => number;
  readonly #timeZone: string;

  constructor(
    users: readonly User[],
    used: ReadonlyMap<string, number> = new Map(),
    now: () => number = Date.now,
    opts: { periods?: ReadonlyMap<string, string>; timeZone?: string } = {},
  ) {
    this.#used = new Map(used);
    this.#periods = new Map(opts.periods ?? []);
    this.#now = now;
    this.#timeZone = opts.timeZone ?? 'UTC';
    this.apply(users);
  }

  /** The user's quota period now ("all" without one); usage of an older period is dropped. */
  period(name: string): string {
    const s = this.#state.get(name);
    const key = periodKey(s?.user.limits.quotaPeriod ?? 'none', this.#timeZone, this.#now());
    if (this.#periods.get(name) !== key) {
      // Usage saved before periods existed belongs to "all".
      if (this.#periods.has(name) || key !== 'all') this.#used.delete(name);
      this.#periods.set(name, key);
    }
    return key;
  }

  /** Sets a user's usage for its current period (the store's sum over every pod). */
  setUsed(name: string, bytes: number): boolean {
    this.period(name);
    const before = this.#used.get(name) ?? 0;
    this.#used.set(name, bytes);
    const quota = this.#state.get(name)?.user.limits.quotaBytes;
    return quota !== undefined && before < quota && bytes >= quota;
  }

  user(name: string): User | undefined {
    return this.#state.get(name)?.user;
  }

  /**
   * After an admission: whether this pod now holds more than its share (1/replicas, rounded up) of
   * the user's connection or unique-IP limit; the store-down fallback uses it.
   */
  overShare(name: string, replicas: number): UserRefusal | undefined {
    const s = this.#state.get(name);
    if (!s) return 'unknown-user';
    const share = (limit: number | undefined): number =>
      limit === undefined ? Number.POSITIVE_INFINITY : Math.ceil(limit / replicas);
    if (s.connections > share(s.user.limits.maxConnections)) return 'max-connections';
    if (s.open.size + s.idle.size > share(s.user.limits.maxUniqueIps)) return 'max-unique-ips';
    return undefined;
  }

  periods(): ReadonlyMap<string, string> {
    return this.#periods;
  }

  /** Admits a connection of `name` from `ip`, counting it, or says why not. */
  admit(name: string, ip: string): UserRefusal | undefined {
    const s = this.#state.get(name);
    if (!s) return 'unknown-user';
    const { user } = s;
    const now = this.#now();
    if (!user.enabled) return 'disabled';
    if (user.limits.expiresAt !== undefined && now >= user.limits.expiresAt) return 'expired';
    if (user.limits.quotaBytes !== undefined) {
      this.period(name);
      if ((this.#used.get(name) ?? 0) >= user.limits.quotaBytes) return 'quota';
    }
    if (user.limits.maxConnections !== undefined && s.connections >= user.limits.maxConnections) {
      return 'max-connections';
    }
    this.#forgetOldIps(s, now);
    const key = limitKey(ip);
    const open = s.open.get(key);
    const known = open !== undefined || s.idle.has(key);
    const count = s.open.size + s.idle.size;
    const max = user.limits.maxUniqueIps;
    if (!known && max !== undefined && count >= max) return 'max-unique-ips';
    s.connections++;
    if (known || count < UNIQUE_IP_TRACK_CAP) {
      s.idle.delete(key);
      s.open.set(key, (open ?? 0) + 1);
    }
    return undefined;
  }

  release(name: string, ip: string): void {
    const s = this.#state.get(name);
    if (!s) return;
    s.connections = Math.max(0, s.connections - 1);
    const key = limitKey(ip);
    const open = s.open.get(key);
    if (open === undefined) return;
    if (open > 1) {
      s.open.set(key, open - 1);
      return;
    }
    s.open.delete(key);
    s.idle.set(key, this.#now());
  }

  /** Counts relayed bytes; true when this pushed the user over its quota (close its connections). */
  addBytes(name: string, bytes: number): boolean {
    this.period(name);
    const before = this.#used.get(name) ?? 0;
    const after = before + bytes;
    this.#used.set(name, after);
    const quota = this.#state.get(name)?.user.limits.quotaBytes;
    return quota !== undefined && before < quota && after >= quota;
  }

  /**
   * Takes a new set of users. Returns the names whose open connections must be closed: users that
   * were removed, disabled, expired, or whose secret changed.
   */
  apply(users: readonly User[]): string[] {
    const close: string[] = [];
    const next = new Map(users.map((u) => [u.name, u]));
    for (const [name, s] of this.#state) {
      const u = next.get(name);
      if (!u?.enabled || !u.secret.equals(s.user.secret)) close.push(name);
      else if (u.limits.expiresAt !== undefined && this.#now() >= u.limits.expiresAt) close.push(name);
    }
    for (const name of close) this.#state.delete(name);
    for (const u of users) {
      const s = this.#state.get(u.name);
      if (s) s.user = u;
      else this.#state.set(u.name, { user: u, connections: 0, open: new Map(), idle: new Map() });
    }
    return close;
  }

  figures(name: string): UserFigures | undefined {
    const s = this.#state.get(name);
    if (!s) return undefined;
    this.#forgetOldIps(s, this.#now());
    this.period(name);
    return {
      connections: s.connections,
      uniqueIps: s.open.size + s.idle.size,
      bytesUsed: this.#used.get(name) ?? 0,
    };
  }

  usage(): ReadonlyMap<string, number> {
    return this.#used;
  }

  #forgetOldIps(s: UserState, now: number): void {
    const window = s.user.limits.uniqueIpWindowMs;
    for (const [key, at] of s.idle) {
      if (now - at < window) return;
      s.idle.delete(key);
    }
  }
}
