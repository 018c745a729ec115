// spec.users -> the proxy's users file (proxy/src/users/users-file.ts), in a Secret of its own that
// the pods mount and the proxy reloads live. The users' secrets never appear in the spec: they are
// generated once and kept in the NAME-secrets Secret (key users.json), or read from a Secret the
// user manages (spec.usersSecretName, one key per user). Pure: randomness is passed in.
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';
import type { UserSettings } from '../api/defaults.js';
import type { MTProxy, UserStatus } from '../api/types.js';
import { USERS_FILE_KEY } from './env.js';
import { childMeta } from './meta.js';
import type { RandomBytes } from './secrets.js';

/** Key of the NAME-secrets Secret holding the generated users' secrets. */
export const USERS_JSON_KEY = 'users.json';

const HEX32 = /^[0-9a-fA-F]{32}$/;
/** A fresh secret that is already taken is drawn again; with 128 random bits this never repeats. */
const MAX_DRAWS = 64;

export interface UserSecretRecord {
  /** 32 lowercase hex digits. */
  readonly secret: string;
  /** The spec's secretRotation this secret was generated for. */
  readonly rotation: number;
}

export type UserSecretMap = Readonly<Record<string, UserSecretRecord>>;

/** The generated users' secrets in a Secret's data; {} when absent, undefined when unreadable. */
export function readUserSecrets(data: Record<string, string> | undefined): UserSecretMap | undefined {
  const raw = data?.[USERS_JSON_KEY];
  if (raw === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw, 'base64').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const out: Record<string, UserSecretRecord> = {};
  for (const [name, rec] of Object.entries(parsed as Record<string, unknown>)) {
    const r = rec as { secret?: unknown; rotation?: unknown } | null;
    if (typeof r?.secret !== 'string' || !HEX32.test(r.secret)) return undefined;
    const rotation = typeof r.rotation === 'number' && Number.isSafeInteger(r.rotation) ? r.rotation : 0;
    out[name] = { secret: r.secret.toLowerCase(), rotation };
  }
  return out;
}

export interface UserSecretPlan {
  /** One record per spec user, sorted by name. */
  readonly secrets: UserSecretMap;
  /** Users that got their first secret. */
  readonly generated: readonly string[];
  /** Users whose secretRotation rose: a new secret replaced the old one. */
  readonly rotated: readonly { readonly name: string; readonly rotation: number }[];
  /** Users no longer in the spec: their secrets are dropped for good. */
  readonly removed: readonly string[];
}

function draw(random: RandomBytes, taken: Set<string>): string {
  for (let i = 0; i < MAX_DRAWS; i++) {
    const fresh = random(16).toString('hex');
    if (!taken.has(fresh)) {
      taken.add(fresh);
      return fresh;
    }
  }
  throw new Error('the random source keeps repeating itself');
}

/**
 * Which secret each user gets: the one it has stays; a user new to the spec gets a fresh one; a
 * user whose secretRotation is now above the rotation its secret was made for gets a fresh one
 * (and only that user). Users removed from the spec lose theirs, so adding the name again later
 * gives a new link rather than reviving an old one; `enabled: false` is the way to pause a user.
 */
export function planUserSecrets(
  current: UserSecretMap,
  users: readonly UserSettings[],
  random: RandomBytes,
  /** Secrets in use elsewhere (those of SECRET), never handed out again. */
  reserved: readonly string[] = [],
): UserSecretPlan {
  const taken = new Set([...reserved, ...Object.values(current).map((r) => r.secret)]);
  const secrets: Record<string, UserSecretRecord> = {};
  const generated: string[] = [];
  const rotated: { name: string; rotation: number }[] = [];
  for (const u of [...users].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const had = current[u.name];
    if (!had) {
      secrets[u.name] = { secret: draw(random, taken), rotation: u.secretRotation };
      generated.push(u.name);
    } else if (u.secretRotation > had.rotation) {
      secrets[u.name] = { secret: draw(random, taken), rotation: u.secretRotation };
      rotated.push({ name: u.name, rotation: u.secretRotation });
    } else {
      secrets[u.name] = had;
    }
  }
  const removed = Object.keys(current).filter((name) => !(name in secrets));
  return { secrets, generated, rotated, removed };
}

/** A user with the secret the proxy will know it by. */
export interface ResolvedUser {
  readonly settings: UserSettings;
  /** 32 lowercase hex digits. */
  readonly secret: string;
  /** The rotation of a generated secret; undefined for a secret from spec.usersSecretName. */
  readonly rotation: number | undefined;
}

export interface UserSelection {
  /** The users written into the file. */
  readonly served: readonly ResolvedUser[];
  /** Users left out, with why (names only, never a secret). */
  readonly left: readonly { readonly name: string; readonly why: 'missing' | 'invalid' | 'duplicate' }[];
}

/** Users from a Secret the user manages: key = user name, value = 32 hex digits. */
export function usersFromSecret(
  data: Record<string, string> | undefined,
  users: readonly UserSettings[],
  envSecrets: readonly string[],
): UserSelection {
  const candidates: (ResolvedUser | { name: string; why: 'missing' | 'invalid' })[] = users.map((u) => {
    const raw = data?.[u.name];
    if (raw === undefined) return { name: u.name, why: 'missing' };
    const hex = Buffer.from(raw, 'base64').toString('utf8').trim();
    if (!HEX32.test(hex)) return { name: u.name, why: 'invalid' };
    return { settings: u, secret: hex.toLowerCase(), rotation: undefined };
  });
  return selectDistinct(candidates, envSecrets);
}

/** Users with generated secrets (every spec user has one after planUserSecrets). */
export function usersFromPlan(
  secrets: UserSecretMap,
  users: readonly UserSettings[],
  envSecrets: readonly string[],
): UserSelection {
  return selectDistinct(
    users.map((u) => {
      const rec = secrets[u.name];
      return rec
        ? { settings: u, secret: rec.secret, rotation: rec.rotation }
        : { name: u.name, why: 'missing' as const };
    }),
    envSecrets,
  );
}

/**
 * The proxy rejects a file in which two users share a secret, and lets a user's secret hide one of
 * SECRET's: a user whose secret is already in use is left out instead, so the others still load.
 */
function selectDistinct(
  candidates: readonly (ResolvedUser | { name: string; why: 'missing' | 'invalid' })[],
  envSecrets: readonly string[],
): UserSelection {
  const used = new Set(envSecrets);
  const served: ResolvedUser[] = [];
  const left: UserSelection['left'][number][] = [];
  for (const c of candidates) {
    if (!('secret' in c)) left.push(c);
    else if (used.has(c.secret)) left.push({ name: c.settings.name, why: 'duplicate' });
    else {
      used.add(c.secret);
      served.push(c);
    }
  }
  return { served, left };
}

/** Who was left out and why, e.g. "missing: bob, carol; invalid: dave" */
export function describeLeft(left: UserSelection['left']): string {
  const groups = new Map<string, string[]>();
  for (const l of left) groups.set(l.why, [...(groups.get(l.why) ?? []), l.name]);
  return [...groups].map(([why, names]) => `${why}: ${names.join(', ')}`).join('; ');
}

/** The users file as the proxy reads it; only the limits the spec sets are written. */
export function renderUsersFile(users: readonly ResolvedUser[]): string {
  const entries: Record<string, Record<string, unknown>> = {};
  for (const { settings: u, secret } of users) {
    const entry: Record<string, unknown> = { secret, enabled: u.enabled };
    const optional: [string, unknown][] = [
      ['maxConnections', u.maxConnections],
      ['maxUniqueIps', u.maxUniqueIps],
      ['uniqueIpWindowSeconds', u.uniqueIpWindowSeconds],
      ['quota', u.quota],
      ['quotaPeriod', u.quotaPeriod],
      ['expires', u.expires],
      ['adTag', u.adTag],
    ];
    for (const [k, v] of optional) if (v !== undefined) entry[k] = v;
    entries[u.name] = entry;
  }
  return `# Written by mtkube-operator from spec.users of this MTProxy; edits here are reverted.\n${stringify(
    { users: entries },
    { defaultStringType: 'PLAIN', lineWidth: 0 },
  )}`;
}

export function renderUsersSecret(mtp: MTProxy, name: string, users: readonly ResolvedUser[]) {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: childMeta(mtp, name, 'users'),
    type: 'Opaque',
    data: { [USERS_FILE_KEY]: Buffer.from(renderUsersFile(users)).toString('base64') },
  };
}

/** For status: tells whether a user's secret changed without revealing it. */
export function userFingerprint(secret: string): string {
  return createHash('sha256').update('mtkube-user-fingerprint\0').update(secret).digest('hex').slice(0, 12);
}

/** status.users: every spec user, in spec order, without a secret. */
export function usersStatus(users: readonly UserSettings[], served: readonly ResolvedUser[]): UserStatus[] {
  const byName = new Map(served.map((r) => [r.settings.name, r]));
  return users.map((u) => {
    const r = byName.get(u.name);
    const st: UserStatus = { name: u.name, enabled: u.enabled, served: r !== undefined };
    if (r?.rotation !== undefined) st.secretRotation = r.rotation;
    if (r) st.fingerprint = userFingerprint(r.secret);
    return st;
  });
}
