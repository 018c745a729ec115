// Settings of the shared state store (STATE_URL and friends), parsed apart from config.ts so that
// the store's concerns stay in this folder. The URL's password never appears in a message: the
// URL is only ever shown without its credentials.
// parseChoice and parseInteger only run when settings are parsed, long after both modules loaded.

import { ConfigError } from './errors.js';
import { parseChoice, parseInteger } from './parse-values.js';

export type ReplayFallback = 'local' | 'refuse';
export type LimitsFallback = 'share' | 'refuse';

export interface StateSettings {
  /** redis:// or rediss:// URL, credentials included (never logged). */
  readonly url: string;
  /** The URL without user name and password, for logs. */
  readonly shownUrl: string;
  /** File holding the password (a mounted Kubernetes Secret); read at start. */
  readonly passwordFile: string | undefined;
  /** A command without an answer in this long counts as the store being down. */
  readonly timeoutMs: number;
  readonly replayFallback: ReplayFallback;
  readonly limitsFallback: LimitsFallback;
  /** Pods sharing the store: while it is down, each pod allows 1/replicas of a limit. */
  readonly replicas: number;
  /** Prefix of every key, so that several proxies can share one store. */
  readonly prefix: string;
  /** Identifies this pod's leases in the store. */
  readonly podId: string;
}

/** Undefined without STATE_URL: nothing is shared and every pod keeps its own state. */
export function parseStateSettings(
  get: (name: string) => string | undefined,
  hostname: string,
): StateSettings | undefined {
  const raw = get('STATE_URL')?.trim();
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(
      'STATE_URL',
      'is not a URL',
      'Write redis://[user:password@]host:port/db or rediss://...',
    );
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError(
      'STATE_URL',
      `scheme ${url.protocol} is not supported`,
      'Use redis:// or rediss:// (TLS)',
    );
  }
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,2}$/.test(db)) {
    throw new ConfigError('STATE_URL', `database "${db}" is not a number`, 'Write the database as /0 .. /15');
  }
  const shown = new URL(url.href);
  shown.username = '';
  shown.password = '';
  const prefix = get('STATE_PREFIX')?.trim() || 'mtkube:';
  return {
    url: url.href,
    shownUrl: shown.href,
    passwordFile: get('STATE_PASSWORD_FILE')?.trim() || undefined,
    timeoutMs: parseInteger('STATE_TIMEOUT_MS', get('STATE_TIMEOUT_MS') ?? '500', 10, 60_000),
    replayFallback: parseChoice('STATE_REPLAY_FALLBACK', get('STATE_REPLAY_FALLBACK') ?? 'local', [
      'local',
      'refuse',
    ] as const),
    limitsFallback: parseChoice('STATE_LIMITS_FALLBACK', get('STATE_LIMITS_FALLBACK') ?? 'share', [
      'share',
      'refuse',
    ] as const),
    replicas: parseInteger('STATE_REPLICAS', get('STATE_REPLICAS') ?? '1', 1, 10_000),
    prefix,
    podId: `${hostname}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
  };
}
