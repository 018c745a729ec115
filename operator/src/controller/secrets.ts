// The I/O around an MTProxy's secrets: read a user's Secret, or make sure the generated one exists
// and holds `count` secrets without ever replacing one. Decisions are in render/secrets.ts.
import type { ProxySettings } from '../api/defaults.js';
import type { MTProxy } from '../api/types.js';
import { childNames, LABELS } from '../render/meta.js';
import {
  parseSecrets,
  planSecrets,
  type RandomBytes,
  readSecretSet,
  renderSecretsSecret,
  SECRETS_KEY,
  type SecretSet,
} from '../render/secrets.js';
import { isConflict, type KubeClient, type KubeObject } from './kube-client.js';

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

export async function readExistingSecrets(
  client: KubeClient,
  namespace: string,
  name: string,
  key: string,
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

/**
 * The generated Secret: created with `count` fresh secrets the first time; later only its labels,
 * owner (retention policy) and count follow the spec - existing secrets are kept.
 */
export async function ensureGeneratedSecrets(
  client: KubeClient,
  mtp: MTProxy,
  count: number,
  retain: boolean,
  random: RandomBytes,
): Promise<SecretsOutcome> {
  const name = childNames(mtp.metadata.name).secrets;
  const ns = mtp.metadata.namespace;
  // Always from the API server, never from a cache that may not have seen our own create yet.
  const existing = await client.find<SecretObject>(secretRef(ns, name));
  if (!existing) {
    const plan = planSecrets(undefined, count, random);
    try {
      await client.create(renderSecretsSecret(mtp, name, plan, retain));
    } catch (err) {
      // Someone (another operator replica, a user) created it meanwhile: use theirs next time.
      if (isConflict(err)) {
        return { ok: false, secretName: name, reason: 'SecretCreateConflict', message: 'retrying' };
      }
      throw err;
    }
    return {
      ok: true,
      secrets: plan.active,
      secretName: name,
      key: SECRETS_KEY,
      generated: plan.generated,
      retired: 0,
    };
  }
  let current: SecretSet | undefined;
  try {
    current = readSecretSet(existing.data);
  } catch {
    current = undefined;
  }
  if (!current) {
    // Never overwrite what might be a user's secrets with new ones.
    return {
      ok: false,
      secretName: name,
      reason: 'InvalidSecret',
      message: `key ${SECRETS_KEY} of Secret ${name} must hold 1 to 16 secrets of 32 hex digits; fix or delete it`,
    };
  }
  const plan = planSecrets(current, count, random);
  const desired = renderSecretsSecret(mtp, name, plan, retain);
  if (needsApply(existing, desired)) await client.apply(desired);
  return {
    ok: true,
    secrets: plan.active,
    secretName: name,
    key: SECRETS_KEY,
    generated: plan.generated,
    retired: Math.max(0, plan.retired.length - current.retired.length),
  };
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
): Promise<{ ok: true; value: string } | { ok: false; reason: string; message: string }> {
  const secret = await client.find<SecretObject>(secretRef(namespace, ref.name));
  if (!secret)
    return { ok: false, reason: 'AdTagSecretNotFound', message: `Secret ${ref.name} does not exist` };
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

export function secretsSourceName(mtp: MTProxy, settings: ProxySettings): string {
  return settings.secrets.kind === 'existing' ? settings.secrets.name : childNames(mtp.metadata.name).secrets;
}
