// The I/O around an MTProxy's secrets: read a user's Secret, or make sure the generated one exists
// and holds `count` secrets and one per user without ever replacing one (a user's rotation aside).
// Decisions are in render/secrets.ts and render/users.ts.
import type { ProxySettings } from '../api/defaults.js';
import type { MTProxy } from '../api/types.js';
import { isConflict, type KubeClient, type KubeObject } from '../controller/kube-client.js';
import { OwnershipConflict } from '../controller/ownership.js';
import { childNames, LABELS } from '../render/meta.js';
import {
  parseSecrets,
  planSecrets,
  type RandomBytes,
  RETIRED_KEY,
  readSecretSet,
  renderSecretsSecret,
  SECRETS_KEY,
  type SecretSet,
} from '../render/secrets.js';
import {
  describeLeft,
  planUserSecrets,
  type ResolvedUser,
  readUserSecrets,
  USERS_JSON_KEY,
  type UserSecretPlan,
  type UserSelection,
  usersFromPlan,
  usersFromSecret,
} from '../render/users.js';

export type SecretsOutcome =
  | {
      readonly ok: true;
      readonly secrets: readonly string[];
      readonly secretName: string;
      readonly key: string;
      /** Newly generated in this call (0 when nothing was generated). */
      readonly generated: number;
      readonly retired: number;
    }
  | { readonly ok: false; readonly secretName: string; readonly reason: string; readonly message: string };

interface SecretObject extends KubeObject {
  data?: Record<string, string>;
}

const secretRef = (namespace: string, name: string) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  namespace,
  name,
});

/**
 * On a Secret the spec names (existingSecretName, usersSecretName, adTag.secretKeyRef): which
 * MTProxies of the namespace may use it, comma-separated, or `*`. The label mtkube.dev/mtproxy=NAME
 * allows that one MTProxy too. Without either, the operator does not use the Secret: whoever may
 * create an MTProxy must not be able to make the operator read other Secrets of the namespace.
 */
export const ALLOWED_MTPROXIES_ANNOTATION = 'mtkube.dev/allowed-mtproxies';

export function secretAllows(secret: KubeObject, mtpName: string): boolean {
  if (secret.metadata?.labels?.[LABELS.mtproxy] === mtpName) return true;
  const list = secret.metadata?.annotations?.[ALLOWED_MTPROXIES_ANNOTATION];
  if (list === undefined) return false;
  return list.split(',').some((n) => n.trim() === '*' || n.trim() === mtpName);
}

export function notAllowedMessage(name: string, mtpName: string): string {
  return `Secret ${name} does not allow MTProxy ${mtpName} to use it: label it ${LABELS.mtproxy}=${mtpName} or annotate it ${ALLOWED_MTPROXIES_ANNOTATION}=${mtpName}`;
}

export async function readExistingSecrets(
  client: KubeClient,
  namespace: string,
  name: string,
  key: string,
  mtpName: string,
): Promise<SecretsOutcome> {
  const secret = await client.find<SecretObject>(secretRef(namespace, name));
  if (!secret) {
    return {
      ok: false,
      secretName: name,
      reason: 'SecretNotFound',
      message: `Secret ${name} does not exist`,
    };
  }
  if (!secretAllows(secret, mtpName)) {
    return {
      ok: false,
      secretName: name,
      reason: 'SecretNotAllowed',
      message: notAllowedMessage(name, mtpName),
    };
  }
  const b64 = secret.data?.[key];
  if (b64 === undefined) {
    return {
      ok: false,
      secretName: name,
      reason: 'SecretKeyMissing',
      message: `Secret ${name} has no key ${key}`,
    };
  }
  try {
    const secrets = parseSecrets(Buffer.from(b64, 'base64').toString('utf8'));
    return { ok: true, secrets, secretName: name, key, generated: 0, retired: 0 };
  } catch {
    // The parser's message quotes part of the bad entry; status gets none of it.
    return {
      ok: false,
      secretName: name,
      reason: 'InvalidSecret',
      message: `key ${key} of Secret ${name} must hold 1 to 16 secrets of 32 hex digits, comma separated`,
    };
  }
}

/** Where the users stand, as the reconciler and status need it; never a secret in a message. */
export type UsersOutcome =
  | {
      readonly ok: true;
      /** The users written into the users file. */
      readonly served: readonly ResolvedUser[];
      readonly left: UserSelection['left'];
      /** The Secret the users' secrets are in (NAME-secrets or spec.usersSecretName). */
      readonly source: string;
      readonly generated: readonly string[];
      readonly rotated: UserSecretPlan['rotated'];
    }
  | { readonly ok: false; readonly source: string; readonly reason: string; readonly message: string };

export interface SecretsResult {
  readonly env: SecretsOutcome;
  readonly users: UsersOutcome;
}

const NO_USERS = (source: string): UsersOutcome => ({
  ok: true,
  served: [],
  left: [],
  source,
  generated: [],
  rotated: [],
});

/**
 * The client secrets (SECRET) and the users' secrets. The operator's own Secret NAME-secrets holds
 * what it generated: the secrets of SECRET (key `secrets`, created with `count` and later only
 * extended) and the users' secrets (key users.json); a secret already there is never replaced,
 * except a user's on a raised secretRotation.
 */
export async function ensureSecrets(
  client: KubeClient,
  mtp: MTProxy,
  s: ProxySettings,
  random: RandomBytes,
): Promise<SecretsResult> {
  const storeName = childNames(mtp.metadata.name).secrets;
  const generateEnv = s.secrets.kind === 'generated';
  const generateUsers = s.userSecrets.kind === 'generated';
  let env: SecretsOutcome | undefined;
  let stored: StoreOutcome | { ok: true; users: undefined } = { ok: true, users: undefined };
  if (generateEnv || generateUsers) {
    stored = await ensureStore(client, mtp, s, random);
    if (!stored.ok) {
      const failed = {
        ok: false as const,
        secretName: storeName,
        reason: stored.reason,
        message: stored.message,
      };
      return {
        env: generateEnv ? failed : await readEnv(client, mtp, s),
        users: { ok: false, source: storeName, reason: stored.reason, message: stored.message },
      };
    }
    if (generateEnv && stored.env) env = stored.env;
  }
  env ??= await readEnv(client, mtp, s);
  const envSecrets = env.ok ? env.secrets : [];
  if (s.users.length === 0) return { env, users: NO_USERS(storeName) };

  if (s.userSecrets.kind === 'existing') {
    const name = s.userSecrets.name;
    const secret = await client.find<SecretObject>(secretRef(mtp.metadata.namespace, name));
    if (!secret) {
      return {
        env,
        users: {
          ok: false,
          source: name,
          reason: 'UsersSecretNotFound',
          message: `Secret ${name} does not exist`,
        },
      };
    }
    if (!secretAllows(secret, mtp.metadata.name)) {
      return {
        env,
        users: {
          ok: false,
          source: name,
          reason: 'SecretNotAllowed',
          message: notAllowedMessage(name, mtp.metadata.name),
        },
      };
    }
    const picked = usersFromSecret(secret.data, s.users, envSecrets);
    return { env, users: usersOutcome(picked, name, [], []) };
  }
  const plan = stored.users;
  if (!plan) return { env, users: NO_USERS(storeName) };
  const picked = usersFromPlan(plan.secrets, s.users, envSecrets);
  return { env, users: usersOutcome(picked, storeName, plan.generated, plan.rotated) };
}

function usersOutcome(
  picked: UserSelection,
  source: string,
  generated: readonly string[],
  rotated: UserSecretPlan['rotated'],
): UsersOutcome {
  if (picked.served.length === 0) {
    // The proxy refuses a users file without users; keep the one the pods have.
    return {
      ok: false,
      source,
      reason: 'UserSecretsMissing',
      message: `no user has a usable secret in Secret ${source} (${describeLeft(picked.left)})`,
    };
  }
  return { ok: true, served: picked.served, left: picked.left, source, generated, rotated };
}

async function readEnv(client: KubeClient, mtp: MTProxy, s: ProxySettings): Promise<SecretsOutcome> {
  if (s.secrets.kind === 'existing') {
    return readExistingSecrets(
      client,
      mtp.metadata.namespace,
      s.secrets.name,
      s.secrets.key,
      mtp.metadata.name,
    );
  }
  // Only reached when the store could not give them (never with generated secrets).
  const name = childNames(mtp.metadata.name).secrets;
  return {
    ok: false,
    secretName: name,
    reason: 'SecretsUnavailable',
    message: `Secret ${name} is not ready`,
  };
}

type StoreOutcome =
  | {
      readonly ok: true;
      readonly env: SecretsOutcome | undefined;
      readonly users: UserSecretPlan | undefined;
    }
  | { readonly ok: false; readonly reason: string; readonly message: string };

/**
 * NAME-secrets: created the first time something is to be generated; later only its labels, owner
 * (retention policy), count and users follow the spec, and the secrets already there are kept.
 */
async function ensureStore(
  client: KubeClient,
  mtp: MTProxy,
  s: ProxySettings,
  random: RandomBytes,
): Promise<StoreOutcome> {
  const name = childNames(mtp.metadata.name).secrets;
  const ns = mtp.metadata.namespace;
  const generateEnv = s.secrets.kind === 'generated';
  const generateUsers = s.userSecrets.kind === 'generated';
  const count = s.secrets.kind === 'generated' ? s.secrets.count : 0;
  const retain = s.secrets.retain;
  // Always from the API server, never from a cache that may not have seen our own create yet.
  const existing = await client.find<SecretObject>(secretRef(ns, name));
  if (!existing) {
    if (!generateEnv && !(generateUsers && s.users.length > 0)) {
      return { ok: true, env: undefined, users: undefined };
    }
    const plan = generateEnv ? planSecrets(undefined, count, random) : undefined;
    const users = generateUsers ? planUserSecrets({}, s.users, random, plan?.active) : undefined;
    try {
      await client.create(renderSecretsSecret(mtp, name, { env: plan, users: users?.secrets ?? {} }, retain));
    } catch (err) {
      // Someone (another operator replica, a user) created it meanwhile: use theirs next time.
      if (isConflict(err)) return { ok: false, reason: 'SecretCreateConflict', message: 'retrying' };
      throw err;
    }
    return { ok: true, env: plan && envOutcome(name, plan, plan.generated, 0), users };
  }

  // Ours by label only: a retained Secret outlives the MTProxy whose UID it carried. A Secret of
  // this name without the label is someone else's, and its values are never read as ours.
  const ours = existing.metadata?.labels?.[LABELS.mtproxy] === mtp.metadata.name;
  if (!ours) {
    throw new OwnershipConflict(
      'Secret',
      name,
      `lacks the label ${LABELS.mtproxy}=${mtp.metadata.name} (add it to adopt the Secret's secrets, or use spec.secrets.existingSecretName)`,
    );
  }
  let current: SecretSet | undefined;
  try {
    // A Secret the operator made for users alone has no `secrets` key yet; anyone else's must.
    current = generateEnv ? readSecretSet(existing.data, ours) : undefined;
  } catch {
    current = undefined;
  }
  if (generateEnv && !current) {
    // Never overwrite what might be a user's secrets with new ones.
    return {
      ok: false,
      reason: 'InvalidSecret',
      message: `key ${SECRETS_KEY} of Secret ${name} must hold 1 to 16 secrets of 32 hex digits; fix or delete it`,
    };
  }
  const storedUsers = readUserSecrets(existing.data);
  if (!storedUsers) {
    return {
      ok: false,
      reason: 'InvalidSecret',
      message: `key ${USERS_JSON_KEY} of Secret ${name} is not the operator's user list; fix or delete it`,
    };
  }
  const plan = current ? planSecrets(current, count, random) : undefined;
  const users = generateUsers
    ? planUserSecrets(storedUsers, s.users, random, [...(plan?.active ?? []), ...(plan?.retired ?? [])])
    : undefined;
  // What this spec does not generate stays as it is (e.g. secrets from before existingSecretName).
  const keep: Record<string, string> = {};
  for (const [k, v] of Object.entries(existing.data ?? {})) {
    const envKey = k === SECRETS_KEY || k === RETIRED_KEY;
    if ((envKey && !generateEnv) || (k === USERS_JSON_KEY && !generateUsers)) keep[k] = v;
  }
  const desired = renderSecretsSecret(mtp, name, { env: plan, users: users?.secrets ?? {}, keep }, retain);
  if (needsApply(existing, desired)) await client.apply(desired);
  return {
    ok: true,
    env:
      plan &&
      current &&
      envOutcome(name, plan, plan.generated, Math.max(0, plan.retired.length - current.retired.length)),
    users,
  };
}

function envOutcome(name: string, plan: SecretSet, generated: number, retired: number): SecretsOutcome {
  return { ok: true, secrets: plan.active, secretName: name, key: SECRETS_KEY, generated, retired };
}

/** Only write when data, labels, annotations or owners differ (apply is idempotent, but costs). */
function needsApply(existing: SecretObject, desired: ReturnType<typeof renderSecretsSecret>): boolean {
  const m = existing.metadata ?? {};
  const sameData = JSON.stringify(sortKeys(existing.data ?? {})) === JSON.stringify(sortKeys(desired.data));
  const labelsOk = Object.entries(desired.metadata.labels).every(([k, v]) => m.labels?.[k] === v);
  const annotationsOk = Object.entries(desired.metadata.annotations ?? {}).every(
    ([k, v]) => m.annotations?.[k] === v,
  );
  const wantOwner = desired.metadata.ownerReferences?.[0]?.uid;
  const hasOwner = (m.ownerReferences ?? []).some((o) => o.uid === wantOwner);
  const hasAnyOurOwner = (m.ownerReferences ?? []).some((o) => o.kind === 'MTProxy');
  const ownersOk = wantOwner ? hasOwner : !hasAnyOurOwner;
  return !(sameData && labelsOk && annotationsOk && ownersOk && m.labels?.[LABELS.mtproxy] !== undefined);
}

function sortKeys(o: Record<string, string>): [string, string][] {
  return Object.entries(o).sort(([a], [b]) => a.localeCompare(b));
}

/** The ad tag from a Secret key: 32 hex digits. */
export async function readAdTagSecret(
  client: KubeClient,
  namespace: string,
  ref: { name: string; key: string },
  mtpName: string,
): Promise<{ ok: true; value: string } | { ok: false; reason: string; message: string }> {
  const secret = await client.find<SecretObject>(secretRef(namespace, ref.name));
  if (!secret)
    return { ok: false, reason: 'AdTagSecretNotFound', message: `Secret ${ref.name} does not exist` };
  if (!secretAllows(secret, mtpName)) {
    return { ok: false, reason: 'SecretNotAllowed', message: notAllowedMessage(ref.name, mtpName) };
  }
  const b64 = secret.data?.[ref.key];
  const value = b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8').trim();
  if (!value || !/^[0-9a-fA-F]{32}$/.test(value)) {
    return {
      ok: false,
      reason: 'InvalidAdTag',
      message: `key ${ref.key} of Secret ${ref.name} must hold the 32-hex-digit tag from @MTProxybot`,
    };
  }
  return { ok: true, value: value.toLowerCase() };
}
