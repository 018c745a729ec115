// Settings of the shared state store (STATE_URL and friends), parsed apart from config.ts so that
// the store's concerns stay in this folder. The URL's password never appears in a message: the
// URL is only ever shown without its credentials.
import { ConfigError } from '../config/errors.js';

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

function choice<T extends string>(variable: string, value: string, choices: readonly T[]): T {
  const v = value.trim().toLowerCase();
  if ((choices as readonly string[]).includes(v)) return v as T;
  throw new ConfigError(
    variable,
    `"${value}" is not one of ${choices.join(', ')}`,
    `Use ${choices.join(' or ')}`,
  );
}

function integer(variable: string, value: string, min: number, max: number): number {
  const n = Number(value.trim());
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(variable, `"${value}" is out of range`, `Use a whole number from ${min} to ${max}`);
  }
  return n;
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
    timeoutMs: integer('STATE_TIMEOUT_MS', get('STATE_TIMEOUT_MS') ?? '500', 10, 60_000),
    replayFallback: choice('STATE_REPLAY_FALLBACK', get('STATE_REPLAY_FALLBACK') ?? 'local', [
      'local',
      'refuse',
    ] as const),
    limitsFallback: choice('STATE_LIMITS_FALLBACK', get('STATE_LIMITS_FALLBACK') ?? 'share', [
      'share',
      'refuse',
    ] as const),
    replicas: integer('STATE_REPLICAS', get('STATE_REPLICAS') ?? '1', 1, 10_000),
    prefix,
    podId: `${hostname}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
  };
}
