// Per-user limits for the whole pod, kept by the primary: every worker asks it before letting an
// authenticated client through, so connection and unique-IP counts are per pod, not per worker.
import type { User } from '../config/users-file.js';

import type { UserRefusal } from '../relay/events.js';

export type { UserRefusal };

interface UserState {
  user: User;
  connections: number;
  /** ip -> [open connections from it, last time seen (ms)] */
  ips: Map<string, [number, number]>;
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
  readonly #now: () => number;

  constructor(
    users: readonly User[],
    used: ReadonlyMap<string, number> = new Map(),
    now: () => number = Date.now,
  ) {
    this.#used = new Map(used);
    this.#now = now;
    this.apply(users);
  }

  /** Admits a connection of `name` from `ip`, counting it, or says why not. */
  admit(name: string, ip: string): UserRefusal | undefined {
    const s = this.#state.get(name);
    if (!s) return 'unknown-user';
    const { user } = s;
    const now = this.#now();
    if (!user.enabled) return 'disabled';
    if (user.limits.expiresAt !== undefined && now >= user.limits.expiresAt) return 'expired';
    if (user.limits.quotaBytes !== undefined && (this.#used.get(name) ?? 0) >= user.limits.quotaBytes)
      return 'quota';
    if (user.limits.maxConnections !== undefined && s.connections >= user.limits.maxConnections) {
      return 'max-connections';
    }
    this.#forgetOldIps(s, now);
    const known = s.ips.get(ip);
    if (!known && user.limits.maxUniqueIps !== undefined && s.ips.size >= user.limits.maxUniqueIps) {
      return 'max-unique-ips';
    }
    s.connections++;
    s.ips.set(ip, [(known?.[0] ?? 0) + 1, now]);
    return undefined;
  }

  release(name: string, ip: string): void {
    const s = this.#state.get(name);
    if (!s) return;
    s.connections = Math.max(0, s.connections - 1);
    const entry = s.ips.get(ip);
    if (entry) {
      entry[0] = Math.max(0, entry[0] - 1);
      entry[1] = this.#now();
    }
  }

  /** Counts relayed bytes; true when this pushed the user over its quota (close its connections). */
  addBytes(name: string, bytes: number): boolean {
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
      else this.#state.set(u.name, { user: u, connections: 0, ips: new Map() });
    }
    return close;
  }

  figures(name: string): UserFigures | undefined {
    const s = this.#state.get(name);
    if (!s) return undefined;
    this.#forgetOldIps(s, this.#now());
    return { connections: s.connections, uniqueIps: s.ips.size, bytesUsed: this.#used.get(name) ?? 0 };
  }

  usage(): ReadonlyMap<string, number> {
    return this.#used;
  }

  #forgetOldIps(s: UserState, now: number): void {
    for (const [ip, [open, seen]] of s.ips) {
      if (open === 0 && now - seen >= s.user.limits.uniqueIpWindowMs) s.ips.delete(ip);
    }
  }
}
