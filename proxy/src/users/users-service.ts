// The primary's view of who may use the proxy: the secrets of the official env contract (users
// secret1, secret2, ...) plus the users file, its live reload, per-pod limits and quota usage
// persisted in DATA_DIR. Workers get the user table over IPC and ask here before admitting a
// limited user.
import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { ConfigError } from '../config/errors.js';
import type { Logger } from '../log/logger.js';
import type { StateStore } from '../state/state-store.js';
import type { UserCounters } from '../telemetry/counters.js';
import { loadUsage, saveUsage } from './quota-store.js';
import { StoreLimits } from './store-limits.js';
import { FLUSH_MS, StoreQuota } from './store-quota.js';
import type { WireUser } from './user-messages.js';
import { type UserRefusal, UserRegistry } from './user-registry.js';
import { parseUsersFile, type User } from './users-file.js';

const POLL_MS = 5_000;
const SAVE_MS = 10_000;

export interface UsersServiceOptions {
  /** Secrets from SECRET or DATA_DIR, served as users secret1, secret2, ... without limits. */
  readonly envSecrets: readonly Buffer[];
  readonly usersFile: string | undefined;
  readonly dataDir: string;
  /** QUOTA_TIME_ZONE: where daily, weekly and monthly quota periods start. */
  readonly timeZone?: string;
  readonly log: Logger;
  /** New user table for the workers, and the users whose open connections must close. */
  readonly onChange: (users: readonly WireUser[], revoke: readonly string[]) => void;
}

function envUsers(secrets: readonly Buffer[]): User[] {
  return secrets.map((secret, i) => ({
    name: `secret${i + 1}`,
    secret,
    enabled: true,
    adTag: undefined,
    limits: {
      maxConnections: undefined,
      maxUniqueIps: undefined,
      uniqueIpWindowMs: 0,
      quotaBytes: undefined,
      quotaPeriod: 'none',
      expiresAt: undefined,
    },
  }));
}

function hasLimits(u: User): boolean {
  const l = u.limits;
  return (
    !u.enabled ||
    l.maxConnections !== undefined ||
    l.maxUniqueIps !== undefined ||
    l.quotaBytes !== undefined ||
    l.expiresAt !== undefined
  );
}

export class UsersService {
  readonly #opts: UsersServiceOptions;
  #users: User[];
  #registry: UserRegistry;
  #fileHash: string | undefined;
  /** Per worker id: the per-user byte totals last reported, to count only what is new. */
  readonly #lastBytes = new Map<number, Map<string, number>>();
  #dirty = false;
  #watcher: FSWatcher | undefined;
  #timers: NodeJS.Timeout[] = [];
  #store: { store: StateStore; limits: StoreLimits; quota: StoreQuota } | undefined;

  private constructor(
    opts: UsersServiceOptions,
    users: User[],
    fileHash: string | undefined,
    saved: { usage: Map<string, number>; periods: Map<string, string> },
  ) {
    this.#opts = opts;
    this.#users = users;
    this.#fileHash = fileHash;
    this.#registry = new UserRegistry(users, saved.usage, Date.now, {
      periods: saved.periods,
      timeZone: opts.timeZone,
    });
  }

  /**
   * Shares limits and quota usage through the store (STATE_URL): connections and unique IPs are
   * counted over every pod, quota usage is summed there every few seconds.
   */
  useStore(store: StateStore | undefined): void {
    if (store === undefined) return;
    this.#store = { store, limits: new StoreLimits(store), quota: new StoreQuota(store) };
    void this.syncQuota();
    this.#timers.push(setInterval(() => void this.syncQuota(), FLUSH_MS).unref());
  }

  /** Adds this pod's new usage to the store and takes every pod's sums from it. */
  async syncQuota(): Promise<void> {
    const shared = this.#store;
    if (shared === undefined) return;
    const quotaUsers = this.#users
      .filter((u) => u.limits.quotaBytes !== undefined)
      .map((u) => ({ name: u.name, period: u.limits.quotaPeriod, periodKey: this.#registry.period(u.name) }));
    const totals = await shared.quota.sync(quotaUsers);
    const over: string[] = [];
    for (const u of quotaUsers) {
      const total = totals.get(u.name);
      if (total === undefined) continue;
      this.#dirty = true;
      if (this.#registry.setUsed(u.name, total + shared.quota.pending(u.name, u.periodKey)))
        over.push(u.name);
    }
    if (over.length > 0) {
      this.#opts.log.info('users over their quota (all pods together); closing their connections', {
        users: over,
      });
      this.#opts.onChange(this.wire(), over);
    }
  }

  /** Loads everything; a broken users file at start is a configuration error. */
  static async start(opts: UsersServiceOptions): Promise<UsersService> {
    let fileUsers: User[] = [];
    let hash: string | undefined;
    if (opts.usersFile !== undefined) {
      const text = await readFile(opts.usersFile, 'utf8').catch((err: Error) => {
        throw new ConfigError(
          'USERS_FILE',
          `cannot read ${opts.usersFile}: ${err.message}`,
          'Check the path',
        );
      });
      fileUsers = parseUsersFile(text, `USERS_FILE (${opts.usersFile})`);
      hash = createHash('sha256').update(text).digest('hex');
    }
    const users = mergeUsers(envUsers(opts.envSecrets), fileUsers);
    const { usage, periods, problem } = await loadUsage(opts.dataDir);
    if (problem) opts.log.error('quota usage could not be read; counting from zero', { problem });
    return new UsersService(opts, users, hash, { usage, periods });
  }

  users(): readonly User[] {
    return this.#users;
  }

  wire(): WireUser[] {
    return this.#users.map((u) => ({
      name: u.name,
      secretHex: u.secret.toString('hex'),
      limited: hasLimits(u),
      adTagHex: u.adTag?.toString('hex'),
    }));
  }

  /**
   * Counts the connection here first (this pod's counts never exceed the sum, so a local refusal
   * is final), then in the store. Store down: STATE_LIMITS_FALLBACK, counted.
   */
  admit(name: string, ip: string): UserRefusal | undefined | Promise<UserRefusal | undefined> {
    const local = this.#registry.admit(name, ip);
    const shared = this.#store;
    const user = this.#registry.user(name);
    if (local !== undefined || shared === undefined || user === undefined || !StoreLimits.applies(user))
      return local;
    return shared.limits.admit(user, ip).then((verdict) => {
      if (verdict !== 'unavailable') {
        if (verdict !== undefined) this.#registry.release(name, ip);
        return verdict;
      }
      shared.store.fellBack('limits');
      const settings = shared.store.settings;
      const refusal =
        settings.limitsFallback === 'refuse'
          ? 'no-answer'
          : this.#registry.overShare(name, settings.replicas);
      if (refusal !== undefined) this.#registry.release(name, ip);
      return refusal;
    });
  }

  release(name: string, ip: string): void {
    this.#registry.release(name, ip);
    const user = this.#registry.user(name);
    if (this.#store !== undefined && user !== undefined) this.#store.limits.release(user, ip);
  }

  /** A worker's per-user totals; counts the new bytes against quotas and closes users over them. */
  countBytes(workerId: number, perUser: Readonly<Record<string, UserCounters>>): void {
    const last = this.#lastBytes.get(workerId) ?? new Map<string, number>();
    this.#lastBytes.set(workerId, last);
    const over: string[] = [];
    for (const [name, row] of Object.entries(perUser)) {
      const total = row.fromClient + row.toClient;
      const delta = total - (last.get(name) ?? 0);
      last.set(name, total);
      if (delta <= 0) continue;
      this.#dirty = true;
      this.#store?.quota.add(name, this.#registry.period(name), delta);
      if (this.#registry.addBytes(name, delta)) over.push(name);
    }
    if (over.length > 0) {
      this.#opts.log.info('users over their quota; closing their connections', { users: over });
      this.#opts.onChange(this.wire(), over);
    }
  }

  workerGone(workerId: number): void {
    this.#lastBytes.delete(workerId);
  }

  figures(name: string): ReturnType<UserRegistry['figures']> {
    return this.#registry.figures(name);
  }

  /** Re-reads the users file; a broken file is rejected whole and the old users stay. */
  async reload(why: string): Promise<void> {
    const path = this.#opts.usersFile;
    if (path === undefined) return;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      this.#opts.log.error('users file reload failed; keeping the users in force', {
        why,
        error: (err as Error).message,
      });
      return;
    }
    const hash = createHash('sha256').update(text).digest('hex');
    if (hash === this.#fileHash) return;
    let fileUsers: User[];
    try {
      fileUsers = parseUsersFile(text, `USERS_FILE (${path})`);
    } catch (err) {
      this.#fileHash = hash;
      this.#opts.log.error('users file rejected; keeping the users in force', {
        why,
        error: (err as Error).message,
      });
      return;
    }
    this.#fileHash = hash;
    const users = mergeUsers(envUsers(this.#opts.envSecrets), fileUsers);
    const revoke = this.#registry.apply(users);
    this.#users = users;
    this.#opts.log.info('users reloaded', { why, users: users.length, closing: revoke });
    this.#opts.onChange(this.wire(), revoke);
  }

  /**
   * Watches the file's directory (a mounted Kubernetes Secret is replaced by swapping a symlink,
   * which a watch on the file itself would miss) and polls as a fallback.
   */
  watch(): void {
    const path = this.#opts.usersFile;
    if (path !== undefined) {
      try {
        this.#watcher = watch(dirname(path), (_event, name) => {
          if (name === null || name === basename(path) || name.startsWith('..'))
            void this.reload('file changed');
        });
        this.#watcher.on('error', () => {});
      } catch (err) {
        this.#opts.log.warn('cannot watch the users file; polling only', { error: (err as Error).message });
      }
      this.#timers.push(setInterval(() => void this.reload('poll'), POLL_MS).unref());
    }
    this.#timers.push(setInterval(() => void this.persist(), SAVE_MS).unref());
  }

  async persist(): Promise<void> {
    if (!this.#dirty) return;
    this.#dirty = false;
    try {
      await saveUsage(this.#opts.dataDir, this.#registry.usage(), this.#registry.periods());
    } catch (err) {
      this.#dirty = true;
      this.#opts.log.error('cannot save quota usage', { error: (err as Error).message });
    }
  }

  async stop(): Promise<void> {
    this.#watcher?.close();
    for (const t of this.#timers) clearInterval(t);
    await this.syncQuota();
    this.#store?.limits.close();
    await this.persist();
  }
}

/** Users-file names win over the generated secretN names only if they do not clash. */
function mergeUsers(env: User[], file: User[]): User[] {
  const names = new Set(file.map((u) => u.name));
  const secrets = new Set(file.map((u) => u.secret.toString('hex')));
  return [...env.filter((u) => !names.has(u.name) && !secrets.has(u.secret.toString('hex'))), ...file];
}
