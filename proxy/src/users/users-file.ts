// The users file (USERS_FILE): one named secret per person or group, each with optional limits.
// YAML or JSON (JSON is YAML). A file with any mistake is rejected whole, with every problem named,
// so a typo never half-applies.
import { isScalar, parseDocument } from 'yaml';
import { ConfigError } from '../config/errors.js';

/** Each user is one more secret every handshake may have to try; keep the worst case cheap. */
const MAX_USERS = 128;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HEX32 = /^[0-9a-fA-F]{32}$/;
const DEFAULT_IP_WINDOW_SECONDS = 600;

export interface UserLimits {
  readonly maxConnections: number | undefined;
  readonly maxUniqueIps: number | undefined;
  readonly uniqueIpWindowMs: number;
  readonly quotaBytes: number | undefined;
  /** When quota usage starts again from zero (in QUOTA_TIME_ZONE). */
  readonly quotaPeriod: QuotaPeriod;
  /** Unix milliseconds; the user is refused from then on. */
  readonly expiresAt: number | undefined;
}

const QUOTA_PERIODS = ['none', 'daily', 'weekly', 'monthly'] as const;
export type QuotaPeriod = (typeof QUOTA_PERIODS)[number];

export interface User {
  readonly name: string;
  readonly secret: Buffer;
  readonly enabled: boolean;
  readonly adTag: Buffer | undefined;
  readonly limits: UserLimits;
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** 1073741824, "1GiB", "500 MB". */
export function parseBytes(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = UNITS[m?.[2]?.toLowerCase() ?? 'x'];
  if (!m || unit === undefined) return undefined;
  const n = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(n) ? n : undefined;
}

function positiveInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}

const KNOWN_KEYS = new Set([
  'secret',
  'enabled',
  'adTag',
  'maxConnections',
  'maxUniqueIps',
  'uniqueIpWindowSeconds',
  'quota',
  'quotaPeriod',
  'expires',
]);

function parseUser(name: string, raw: unknown, problems: string[]): User | undefined {
  const where = `user "${name}"`;
  if (!NAME.test(name)) {
    problems.push(`${where}: names use letters, digits, "_", "." and "-" (at most 64)`);
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push(`${where}: expected a mapping with at least "secret"`);
    return undefined;
  }
  const u = raw as Record<string, unknown>;
  for (const key of Object.keys(u)) {
    if (!KNOWN_KEYS.has(key))
      problems.push(`${where}: unknown key "${key}" (known: ${[...KNOWN_KEYS].join(', ')})`);
  }
  const secret =
    typeof u.secret === 'string' && HEX32.test(u.secret) ? Buffer.from(u.secret, 'hex') : undefined;
  if (!secret) problems.push(`${where}: "secret" must be 32 hex digits (no dd/ee prefix)`);
  const adTag =
    u.adTag === undefined
      ? undefined
      : typeof u.adTag === 'string' && HEX32.test(u.adTag)
        ? Buffer.from(u.adTag, 'hex')
        : null;
  if (adTag === null) problems.push(`${where}: "adTag" must be 32 hex digits`);
  if (u.enabled !== undefined && typeof u.enabled !== 'boolean')
    problems.push(`${where}: "enabled" must be true or false`);
  const check = (key: string, parsed: number | undefined, what: string): number | undefined => {
    if (u[key] !== undefined && parsed === undefined) problems.push(`${where}: "${key}" must be ${what}`);
    return parsed;
  };
  const maxConnections = check('maxConnections', positiveInt(u.maxConnections), 'a whole number above 0');
  const maxUniqueIps = check('maxUniqueIps', positiveInt(u.maxUniqueIps), 'a whole number above 0');
  const window = check(
    'uniqueIpWindowSeconds',
    positiveInt(u.uniqueIpWindowSeconds),
    'a whole number of seconds',
  );
  const quotaBytes = check('quota', parseBytes(u.quota), 'a byte count such as 10737418240 or "10GiB"');
  const quotaPeriod = u.quotaPeriod ?? 'none';
  if (!(QUOTA_PERIODS as readonly unknown[]).includes(quotaPeriod))
    problems.push(`${where}: "quotaPeriod" must be one of ${QUOTA_PERIODS.join(', ')}`);
  let expiresAt: number | undefined;
  if (u.expires !== undefined) {
    const t =
      u.expires instanceof Date
        ? u.expires.getTime()
        : typeof u.expires === 'string'
          ? Date.parse(u.expires)
          : Number.NaN;
    if (Number.isNaN(t)) problems.push(`${where}: "expires" must be a date such as 2026-12-31T23:59:59Z`);
    else expiresAt = t;
  }
  if (!secret || adTag === null) return undefined;
  return {
    name,
    secret,
    enabled: u.enabled !== false,
    adTag,
    limits: {
      maxConnections,
      maxUniqueIps,
      uniqueIpWindowMs: (window ?? DEFAULT_IP_WINDOW_SECONDS) * 1000,
      quotaBytes,
      quotaPeriod: quotaPeriod as QuotaPeriod,
      expiresAt,
    },
  };
}

/** Parses the whole file; any problem rejects it, naming each one. */
export function parseUsersFile(text: string, source = 'USERS_FILE'): User[] {
  let doc: unknown;
  try {
    const parsed = parseDocument(text);
    if (parsed.errors.length > 0) throw parsed.errors[0];
    doc = parsed.toJS();
    // An unquoted secret or tag of only digits reads as a number in YAML; keep what was written.
    const users = (doc as { users?: unknown } | null)?.users;
    if (typeof users === 'object' && users !== null) {
      for (const [name, raw] of Object.entries(users)) {
        for (const key of ['secret', 'adTag']) {
          const node = parsed.getIn(['users', name, key], true);
          if (isScalar(node) && typeof node.value === 'number' && node.source !== undefined) {
            (raw as Record<string, unknown>)[key] = node.source;
          }
        }
      }
    }
  } catch (err) {
    throw new ConfigError(
      source,
      `not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`,
      'Fix the syntax',
    );
  }
  const root = (doc as { users?: unknown } | null)?.users;
  if (typeof root !== 'object' || root === null || Array.isArray(root)) {
    throw new ConfigError(
      source,
      'no "users:" mapping at the top',
      'Write users: { alice: { secret: <32 hex> } }',
    );
  }
  const problems: string[] = [];
  const users: User[] = [];
  for (const [name, raw] of Object.entries(root)) {
    const user = parseUser(name, raw, problems);
    if (user) users.push(user);
  }
  if (users.length + problems.length === 0) problems.push('no users');
  if (users.length > MAX_USERS) problems.push(`${users.length} users; at most ${MAX_USERS} are allowed`);
  const seen = new Map<string, string>();
  for (const u of users) {
    const hex = u.secret.toString('hex');
    const other = seen.get(hex);
    if (other) problems.push(`users "${other}" and "${u.name}" have the same secret`);
    seen.set(hex, u.name);
  }
  if (problems.length > 0) {
    throw new ConfigError(source, `rejected: ${problems.join('; ')}`, 'Nothing from this file was applied');
  }
  return users;
}
