// maxConnections and maxUniqueIps summed over every proxy using the store. Each admitted
// connection is a lease in a sorted set per user (member: pod id + sequence, score: expiry on the
// store's clock); the pod renews its leases every LEASE_RENEW_MS, so the connections of a pod that
// died are given back within LEASE_MS. Client addresses are a second sorted set whose score is
// "counted until": renewed while a connection from it is open, and pushed to now + the unique-IP
// window when one closes. One script per admission checks and counts atomically (O(log n) in the
// store, one round trip, pipelined with the turn's other commands).

import { limitKey } from '../admission/ip-limit.js';
import type { UserRefusal } from '../session/events.js';
import type { StateStore } from '../state/state-store.js';
import type { User } from './users-file.js';

const LEASE_MS = 15_000;
const LEASE_RENEW_MS = 5_000;

/** The store's clock in ms, so that pods with skewed clocks agree. */
const NOW = `local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS: connections, addresses. ARGV: lease ms, member, address, maxConnections, maxUniqueIps (-1: none), key ttl ms
const ADMIT = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local maxc = tonumber(ARGV[4])
local maxi = tonumber(ARGV[5])
if maxc >= 0 and redis.call('ZCARD', KEYS[1]) >= maxc then return 'max-connections' end
if maxi >= 0 and not redis.call('ZSCORE', KEYS[2], ARGV[3]) and redis.call('ZCARD', KEYS[2]) >= maxi then
  return 'max-unique-ips'
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
redis.call('ZADD', KEYS[2], 'GT', now + tonumber(ARGV[1]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[6]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[6]))
return 'ok'`;

// KEYS: connections, addresses. ARGV: member, address, unique-IP window ms
const RELEASE = `${NOW}
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 'GT', now + tonumber(ARGV[3]), ARGV[2])
return 1`;

// KEYS: connections, addresses. ARGV: lease ms, key ttl ms, then member, address pairs
const RENEW = `${NOW}
local lease = now + tonumber(ARGV[1])
for i = 3, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], 'XX', lease, ARGV[i])
  redis.call('ZADD', KEYS[2], 'GT', lease, ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
return 1`;

export type StoreAdmission = UserRefusal | undefined | 'unavailable';

export class StoreLimits {
  readonly #store: StateStore;
  /** user -> address key -> this pod's lease members for it (a connection each). */
  readonly #leases = new Map<string, Map<string, string[]>>();
  /** user -> how long its keys live in the store (ms) */
  readonly #ttls = new Map<string, number>();
  #seq = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(store: StateStore) {
    this.#store = store;
    this.#timer = setInterval(() => void this.#renew(), LEASE_RENEW_MS).unref();
  }

  static applies(user: User): boolean {
    return user.limits.maxConnections !== undefined || user.limits.maxUniqueIps !== undefined;
  }

  #keys(user: string): [string, string] {
    return [this.#store.key('c', user), this.#store.key('i', user)];
  }

  static #ttl(user: User): number {
    return 2 * Math.max(LEASE_MS, user.limits.uniqueIpWindowMs);
  }

  async admit(user: User, ip: string): Promise<StoreAdmission> {
    const address = limitKey(ip);
    const member = `${this.#store.settings.podId}:${++this.#seq}`;
    const [c, i] = this.#keys(user.name);
    let reply: unknown;
    try {
      reply = await this.#store.command([
        'EVAL',
        ADMIT,
        2,
        c,
        i,
        LEASE_MS,
        member,
        address,
        user.limits.maxConnections ?? -1,
        user.limits.maxUniqueIps ?? -1,
        StoreLimits.#ttl(user),
      ]);
    } catch {
      return 'unavailable';
    }
    if (reply !== 'ok') return reply === 'max-unique-ips' ? 'max-unique-ips' : 'max-connections';
    let byAddress = this.#leases.get(user.name);
    if (byAddress === undefined) {
      byAddress = new Map();
      this.#leases.set(user.name, byAddress);
    }
    this.#ttls.set(user.name, StoreLimits.#ttl(user));
    const list = byAddress.get(address) ?? [];
    list.push(member);
    byAddress.set(address, list);
    return undefined;
  }

  /** Gives back one lease of `user` from `ip`, if this pod holds one (a fallback admission has none). */
  release(user: User, ip: string): void {
    const address = limitKey(ip);
    const byAddress = this.#leases.get(user.name);
    const list = byAddress?.get(address);
    const member = list?.pop();
    if (member === undefined) return;
    if (list!.length === 0) byAddress!.delete(address);
    if (byAddress!.size === 0) this.#leases.delete(user.name);
    const [c, i] = this.#keys(user.name);
    // Not given back now (store down): the lease runs out by itself within LEASE_MS.
    this.#store
      .command(['EVAL', RELEASE, 2, c, i, member, address, user.limits.uniqueIpWindowMs])
      .catch(() => this.#store.fellBack('limits'));
  }

  async #renew(): Promise<void> {
    const jobs: Promise<unknown>[] = [];
    for (const [user, byAddress] of this.#leases) {
      const args: (string | number)[] = [];
      for (const [address, members] of byAddress) for (const m of members) args.push(m, address);
      const [c, i] = this.#keys(user);
      jobs.push(
        this.#store
          .command(['EVAL', RENEW, 2, c, i, LEASE_MS, this.#ttls.get(user) ?? 2 * LEASE_MS, ...args])
          .catch(() => undefined),
      );
    }
    await Promise.all(jobs);
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
