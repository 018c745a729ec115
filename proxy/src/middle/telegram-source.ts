// Telegram's proxy secret and middle-proxy list for middle mode (§6.1, §6.2), kept current while
// the proxy runs. At start both are fetched; a config that cannot be had comes from the cache in
// DATA_DIR or, on the very first start, from the built-in table. The secret has no built-in copy
// (Telegram's real one must not be shipped): without a fetched or cached one, middle mode cannot
// start. Every CONFIG_REFRESH_INTERVAL both are fetched again; a failure keeps the last good copy.
// Nothing here throws after `start()`: every outcome is reported to the listener.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { keepPrivate } from '../config/private-file.js';
import { RefreshLoop } from '../timers/refresh-loop.js';
import type { Scheduler } from '../timers/scheduler.js';
import type { DateObservation } from './clock.js';
import { builtinProxyConfig } from './codec/builtin-config.js';
import type { MiddleProxyConfig } from './codec/proxy-config.js';
import {
  DEFAULT_READ_LIMITS,
  md5Hex,
  type ReadLimits,
  readSourceDated,
  TelegramFileError,
  validateProxyConfig,
  validateProxySecret,
} from './telegram-files.js';

export type TelegramFile = 'secret' | 'config' | 'config-v6';

/** Where the copy in use came from. */
export type FileOrigin = 'fetched' | 'cache' | 'built-in';

/** What /stats shows about a file (official config_* keys and aes_pwd_hash). */
export interface FileInfo {
  /** The URL or path it was read from, `built-in` for the shipped table. */
  readonly source: string;
  readonly origin: FileOrigin;
  /** Unix seconds. */
  readonly loadedAt: number;
  readonly size: number;
  /** Hex MD5 of the bytes; empty for the built-in table. */
  readonly md5: string;
}

export interface ConfigInfo extends FileInfo {
  /** Distinct `proxy_for` ids (official config_auth_clusters). */
  readonly clusters: number;
}

export interface TelegramConfigSnapshot {
  readonly secret: Buffer;
  readonly secretInfo: FileInfo;
  readonly config: MiddleProxyConfig;
  readonly configInfo: ConfigInfo;
  /** Present only when a v6 source is configured. */
  readonly configV6: MiddleProxyConfig | undefined;
  readonly configV6Info: ConfigInfo | undefined;
}

/**
 * One attempt to load one file. `ok` with `changed: false` means the same bytes came again.
 * On `failed` / `rejected`, `kept` says what stays in use.
 */
export type LoadResult =
  | {
      readonly file: TelegramFile;
      readonly outcome: 'ok';
      readonly source: string;
      readonly changed: boolean;
      readonly info: FileInfo;
    }
  | {
      readonly file: TelegramFile;
      readonly outcome: 'failed' | 'rejected';
      readonly source: string;
      readonly error: Error;
      readonly kept: 'previous' | 'cache' | 'built-in' | 'nothing';
    };

export interface TelegramConfigListener {
  /** Every load attempt, at start and at each refresh (count ok/failed/rejected, log failures). */
  result?(result: LoadResult): void;
  /** An HTTP answer's Date header and timing, for the clock check (each fetch, even a rejected body). */
  date?(observation: DateObservation): void;
  /** The snapshot in use changed (also called once by `start`). Apply it to the pool. */
  changed?(snapshot: TelegramConfigSnapshot, files: ReadonlySet<TelegramFile>): void;
}

export interface TelegramConfigOptions {
  /** PROXY_SECRET_URL: URL or file path. */
  readonly secretSource: string;
  /** PROXY_CONFIG_URL: URL or file path. */
  readonly configSource: string;
  /** Optional IPv6 list (getProxyConfigV6). */
  readonly configV6Source?: string | undefined;
  /** CONFIG_REFRESH_INTERVAL in ms; 0 turns refreshing off. */
  readonly refreshIntervalMs: number;
  /** DATA_DIR: the last good files are kept here so a restart without network still works. */
  readonly cacheDir?: string | undefined;
  readonly limits?: ReadLimits;
  /** Milliseconds since the epoch. */
  readonly now?: () => number;
  readonly scheduler?: Scheduler;
  readonly listener?: TelegramConfigListener;
}

/** Names of the cached copies in DATA_DIR (the names the official Docker image uses). */
export const CACHE_FILES: Readonly<Record<TelegramFile, string>> = {
  secret: 'proxy-secret',
  config: 'proxy-multi.conf',
  'config-v6': 'proxy-multi-v6.conf',
};

/** Middle mode cannot start: no proxy secret from the source nor from the cache. */
export class MiddleModeUnavailableError extends Error {
  readonly code = 'ERR_MIDDLE_MODE_UNAVAILABLE';
}

interface FileKind<T> {
  readonly file: TelegramFile;
  readonly validate: (bytes: Buffer, source: string) => T;
}

const SECRET: FileKind<Buffer> = {
  file: 'secret',
  validate: (bytes, source) => Buffer.from(validateProxySecret(bytes, source)),
};
const CONFIG: FileKind<MiddleProxyConfig> = { file: 'config', validate: validateProxyConfig };
const CONFIG_V6: FileKind<MiddleProxyConfig> = { file: 'config-v6', validate: validateProxyConfig };

interface Loaded<T> {
  readonly value: T;
  readonly info: FileInfo;
}

export class TelegramConfigSource {
  readonly #options: TelegramConfigOptions;
  readonly #now: () => number;
  readonly #loop: RefreshLoop;
  #snapshot: TelegramConfigSnapshot | undefined;

  constructor(options: TelegramConfigOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#loop = new RefreshLoop(() => this.#refresh(), options.refreshIntervalMs, options.scheduler);
  }

  /** The copy in use; undefined before `start()` succeeded. */
  get snapshot(): TelegramConfigSnapshot | undefined {
    return this.#snapshot;
  }

  /**
   * First load. Resolves with the snapshot in use (fetched, cached or built-in config) and starts
   * the refresh timer. Rejects with MiddleModeUnavailableError when there is no proxy secret.
   */
  async start(): Promise<TelegramConfigSnapshot> {
    const o = this.#options;
    const secret = await this.#loadInitial(SECRET, o.secretSource);
    if (secret === undefined) {
      throw new MiddleModeUnavailableError(
        `middle mode cannot start: no proxy secret could be read from ${o.secretSource}` +
          (o.cacheDir ? ` and none is cached in ${o.cacheDir}` : ' and no DATA_DIR cache is set') +
          '. Make the source reachable (PROXY_SECRET_URL may name a local file) or run in direct mode',
      );
    }
    const config = (await this.#loadInitial(CONFIG, o.configSource)) ?? this.#builtin(4);
    const v6 =
      o.configV6Source === undefined
        ? undefined
        : ((await this.#loadInitial(CONFIG_V6, o.configV6Source)) ?? this.#builtin(6));
    this.#snapshot = {
      secret: secret.value,
      secretInfo: secret.info,
      config: config.value,
      configInfo: withClusters(config.info, config.value),
      configV6: v6?.value,
      configV6Info: v6 && withClusters(v6.info, v6.value),
    };
    const files = new Set<TelegramFile>(['secret', 'config']);
    if (v6) files.add('config-v6');
    this.#announce(this.#snapshot, files);
    this.#loop.start();
    return this.#snapshot;
  }

  /** Fetch everything again now; resolves when done. Never rejects. */
  refresh(): Promise<void> {
    return this.#loop.runNow();
  }

  stop(): void {
    this.#loop.stop();
  }

  async #refresh(): Promise<void> {
    const current = this.#snapshot;
    if (current === undefined || this.#loop.stopped) return;
    const o = this.#options;
    const changed = new Set<TelegramFile>();
    let next = current;
    const secret = await this.#loadAgain(SECRET, o.secretSource, current.secretInfo);
    if (secret) {
      changed.add('secret');
      next = { ...next, secret: secret.value, secretInfo: secret.info };
    }
    const config = await this.#loadAgain(CONFIG, o.configSource, current.configInfo);
    if (config) {
      changed.add('config');
      next = { ...next, config: config.value, configInfo: withClusters(config.info, config.value) };
    }
    if (o.configV6Source !== undefined && current.configV6Info) {
      const v6 = await this.#loadAgain(CONFIG_V6, o.configV6Source, current.configV6Info);
      if (v6) {
        changed.add('config-v6');
        next = { ...next, configV6: v6.value, configV6Info: withClusters(v6.info, v6.value) };
      }
    }
    if (this.#loop.stopped || changed.size === 0) return;
    this.#snapshot = next;
    this.#announce(next, changed);
  }

  /** Source, then cache; undefined when neither gives a valid copy (results reported). */
  async #loadInitial<T>(kind: FileKind<T>, source: string): Promise<Loaded<T> | undefined> {
    try {
      const loaded = await this.#fetch(kind, source);
      this.#report({ file: kind.file, outcome: 'ok', source, changed: true, info: loaded.info });
      await this.#saveToCache(kind.file, loaded.bytes);
      return loaded;
    } catch (err) {
      const cached = await this.#fromCache(kind);
      const kept = cached ? 'cache' : kind.file === 'secret' ? 'nothing' : 'built-in';
      this.#reportFailure(kind.file, source, err, kept);
      return cached;
    }
  }

  /** A new valid copy that differs from `previous`, else undefined (results reported). */
  async #loadAgain<T>(kind: FileKind<T>, source: string, previous: FileInfo): Promise<Loaded<T> | undefined> {
    try {
      const loaded = await this.#fetch(kind, source);
      const changed = loaded.info.md5 !== previous.md5;
      this.#report({
        file: kind.file,
        outcome: 'ok',
        source,
        changed,
        info: changed ? loaded.info : previous,
      });
      if (!changed) return undefined;
      await this.#saveToCache(kind.file, loaded.bytes);
      return loaded;
    } catch (err) {
      this.#reportFailure(kind.file, source, err, 'previous');
      return undefined;
    }
  }

  async #fetch<T>(
    kind: FileKind<T>,
    source: string,
    origin: FileOrigin = 'fetched',
  ): Promise<Loaded<T> & { bytes: Buffer }> {
    const { bytes, date } = await readSourceDated(source, this.#options.limits ?? DEFAULT_READ_LIMITS);
    if (date !== undefined) this.#observeDate(date);
    const value = kind.validate(bytes, source);
    const info: FileInfo = {
      source,
      origin,
      loadedAt: Math.floor(this.#now() / 1000),
      size: bytes.length,
      md5: md5Hex(bytes),
    };
    return { value, info, bytes };
  }

  async #fromCache<T>(kind: FileKind<T>): Promise<Loaded<T> | undefined> {
    const dir = this.#options.cacheDir;
    if (dir === undefined) return undefined;
    const path = join(dir, CACHE_FILES[kind.file]);
    try {
      const loaded = await this.#fetch(kind, path, 'cache');
      await keepPrivate(path);
      return loaded;
    } catch (err) {
      // A missing cache is the normal first start; a broken one is worth a line.
      const missing = err instanceof TelegramFileError && /ENOENT/.test(err.message);
      if (!missing)
        this.#reportFailure(kind.file, path, err, kind.file === 'secret' ? 'nothing' : 'built-in');
      return undefined;
    }
  }

  async #saveToCache(file: TelegramFile, bytes: Buffer): Promise<void> {
    const dir = this.#options.cacheDir;
    if (dir === undefined) return;
    const path = join(dir, CACHE_FILES[file]);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, bytes, { mode: 0o600 });
      await rename(tmp, path);
    } catch {
      // The cache is a convenience: a read-only DATA_DIR must not stop middle mode.
    }
  }

  #builtin(family: 4 | 6): Loaded<MiddleProxyConfig> {
    const info: FileInfo = {
      source: 'built-in',
      origin: 'built-in',
      loadedAt: Math.floor(this.#now() / 1000),
      size: 0,
      md5: '',
    };
    return { value: builtinProxyConfig(family), info };
  }

  #reportFailure(
    file: TelegramFile,
    source: string,
    err: unknown,
    kept: 'previous' | 'cache' | 'built-in' | 'nothing',
  ): void {
    const error = err instanceof Error ? err : new Error(String(err));
    const outcome = error instanceof TelegramFileError ? error.problem : 'failed';
    this.#report({ file, outcome, source, error, kept });
  }

  #announce(snapshot: TelegramConfigSnapshot, files: ReadonlySet<TelegramFile>): void {
    try {
      this.#options.listener?.changed?.(snapshot, files);
    } catch {
      // As below: the snapshot is in use whatever the listener did with it.
    }
  }

  #observeDate(date: DateObservation): void {
    try {
      this.#options.listener?.date?.(date);
    } catch {
      // As in #report.
    }
  }

  #report(result: LoadResult): void {
    try {
      this.#options.listener?.result?.(result);
    } catch {
      // A listener's bug must not stop the refresh.
    }
  }
}

function withClusters(info: FileInfo, config: MiddleProxyConfig): ConfigInfo {
  return { ...info, clusters: config.targets.size };
}
