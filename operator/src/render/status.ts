// What the operator observed -> MTProxy status: conditions with reasons, replica counts, endpoints,
// restart times. All status logic of the operator is here, in one pure function (renderStatus);
// the reconciler only gathers observations and writes the result. Never given a secret value, so
// it cannot write one.
import {
  type Condition,
  type ConditionStatus,
  ConditionType,
  type Endpoint,
  type MTProxy,
  type MTProxyStatus,
  type UserStatus,
} from '../api/types.js';
import { formatTime } from '../schedule/clock.js';

export interface DeploymentObservation {
  metadata?: { generation?: number };
  spec?: { replicas?: number; paused?: boolean };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

export type RolloutState = 'missing' | 'progressing' | 'stuck' | 'complete';

/** Where a Deployment's rollout stands; the daily roll waits while it is not complete. */
export function rolloutState(dep: DeploymentObservation | undefined): RolloutState {
  if (!dep) return 'missing';
  const st = dep.status ?? {};
  const stuck = st.conditions?.some(
    (c) => c.type === 'Progressing' && c.status === 'False' && c.reason === 'ProgressDeadlineExceeded',
  );
  if (stuck) return 'stuck';
  const desired = dep.spec?.replicas ?? 1;
  const updated = st.updatedReplicas ?? 0;
  if ((st.observedGeneration ?? 0) < (dep.metadata?.generation ?? 0)) return 'progressing';
  if (updated < desired || (st.replicas ?? 0) > updated || (st.availableReplicas ?? 0) < updated) {
    return 'progressing';
  }
  return 'complete';
}

export interface ConditionInput {
  readonly status: ConditionStatus;
  readonly reason: string;
  readonly message: string;
}

/** UsersReady and status.users; undefined when the spec has no users. */
export type UsersStatusInput =
  | (ConditionInput & {
      /** The users file could not be rendered at all: the pods are not updated. */
      readonly blocking: boolean;
      readonly list: readonly UserStatus[];
      /** The rendered users Secret the pods mount. */
      readonly secretName: string | undefined;
    })
  | undefined;

export interface StatusInputs {
  readonly now: number;
  readonly secrets: ConditionInput & {
    readonly secretName: string | undefined;
    readonly count: number | undefined;
    readonly fingerprint: string | undefined;
  };
  readonly externalAddress: ConditionInput & { readonly ip: string | undefined };
  readonly users?: UsersStatusInput;
  /** undefined when no ad tag is configured (the condition then does not apply). */
  readonly adTag: ConditionInput | undefined;
  /** The ad tag could not be read: the pods are not updated until it is fixed. */
  readonly adTagProblem?: { readonly reason: string; readonly message: string } | undefined;
  /** undefined when there is no store and nothing asks for one (the condition then does not apply). */
  readonly sharedState?: ConditionInput | undefined;
  /** undefined without fake TLS (the condition then does not apply); see fakeTlsProfileCondition. */
  readonly fakeTlsProfile?: ConditionInput | undefined;
  readonly deployment: DeploymentObservation | undefined;
  readonly paused: boolean;
  readonly mode: 'direct' | 'middle' | undefined;
  readonly image: string | undefined;
  readonly selector: string;
  readonly linksSecretName: string | undefined;
  readonly endpoints: readonly Endpoint[];
  readonly restart: {
    readonly lastRestartTime: string | undefined;
    readonly nextRestartTime: string | undefined;
    readonly restartSchedule: string | undefined;
  };
}

/** Keeps lastTransitionTime when the status of a condition did not change. */
export function mergeCondition(
  previous: readonly Condition[] | undefined,
  type: string,
  input: ConditionInput,
  generation: number | undefined,
  now: number,
): Condition {
  const old = previous?.find((c) => c.type === type);
  const condition: Condition = {
    type,
    status: input.status,
    reason: input.reason,
    message: input.message,
    lastTransitionTime: old && old.status === input.status ? old.lastTransitionTime : formatTime(now),
  };
  if (generation !== undefined) condition.observedGeneration = generation;
  return condition;
}

function progressing(inputs: StatusInputs): ConditionInput {
  if (inputs.paused) return { status: 'False', reason: 'Paused', message: 'spec.paused is true' };
  const state = rolloutState(inputs.deployment);
  const st = inputs.deployment?.status ?? {};
  switch (state) {
    case 'missing':
      return { status: 'True', reason: 'Creating', message: 'the Deployment does not exist yet' };
    case 'progressing':
      return {
        status: 'True',
        reason: 'RollingOut',
        message: `${st.updatedReplicas ?? 0} of ${inputs.deployment?.spec?.replicas ?? 0} pods updated, ${st.availableReplicas ?? 0} available`,
      };
    case 'stuck':
      return {
        status: 'False',
        reason: 'ProgressDeadlineExceeded',
        message: 'the rollout is not progressing',
      };
    case 'complete':
      return { status: 'False', reason: 'RolloutComplete', message: 'all pods run the current template' };
  }
}

/**
 * A reconcile that could not go through: the spec cannot be run (InvalidSpec), asks for what the
 * operator's policy forbids (NotAllowed), an object of
 * someone else's stands where a child should be (Conflict), or an error (ReconcileFailed). The
 * rest of the status stays as last observed.
 */
export interface BlockedStatusInputs {
  readonly now: number;
  readonly blocked: {
    readonly reason: 'InvalidSpec' | 'NotAllowed' | 'Conflict' | 'ReconcileFailed';
    /** Must not contain secrets (errors pass through redact first). */
    readonly message: string;
  };
}

function degraded(inputs: StatusInputs): ConditionInput {
  if (inputs.secrets.status !== 'True') {
    return { status: 'True', reason: inputs.secrets.reason, message: inputs.secrets.message };
  }
  if (inputs.users?.blocking) {
    return { status: 'True', reason: inputs.users.reason, message: inputs.users.message };
  }
  const conds = inputs.deployment?.status?.conditions ?? [];
  const failure = conds.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
  if (failure) {
    return { status: 'True', reason: 'ReplicaFailure', message: failure.message ?? 'pods cannot be created' };
  }
  if (rolloutState(inputs.deployment) === 'stuck') {
    return { status: 'True', reason: 'RolloutStuck', message: 'the rollout exceeded its progress deadline' };
  }
  if (inputs.adTagProblem) {
    return { status: 'True', reason: inputs.adTagProblem.reason, message: inputs.adTagProblem.message };
  }
  return { status: 'False', reason: 'AsExpected', message: 'no problem found' };
}

function ready(
  inputs: StatusInputs,
  degradedNow: ConditionInput,
  progressingNow: ConditionInput,
): ConditionInput {
  if (degradedNow.status === 'True')
    return { status: 'False', reason: degradedNow.reason, message: degradedNow.message };
  const dep = inputs.deployment;
  if (!dep) return { status: 'False', reason: 'Creating', message: 'the Deployment does not exist yet' };
  const desired = dep.spec?.replicas ?? 0;
  const available = dep.status?.availableReplicas ?? 0;
  if (desired === 0) return { status: 'False', reason: 'ScaledToZero', message: 'spec.replicas is 0' };
  if (progressingNow.status === 'True') {
    return { status: 'False', reason: progressingNow.reason, message: progressingNow.message };
  }
  if (available < desired) {
    return { status: 'False', reason: 'PodsNotReady', message: `${available} of ${desired} pods available` };
  }
  return { status: 'True', reason: 'Available', message: `${available} of ${desired} pods available` };
}

/** The status for what was observed, or for a reconcile that was blocked. */
export function renderStatus(mtp: MTProxy, inputs: StatusInputs | BlockedStatusInputs): MTProxyStatus {
  return 'blocked' in inputs ? blockedStatus(mtp, inputs) : observedStatus(mtp, inputs);
}

function blockedStatus(mtp: MTProxy, inputs: BlockedStatusInputs): MTProxyStatus {
  const generation = mtp.metadata.generation;
  const { reason, message } = inputs.blocked;
  const previous = mtp.status?.conditions;
  const conditions = [...(previous ?? [])];
  const set = (type: string, c: ConditionInput) => {
    const next = mergeCondition(previous, type, c, generation, inputs.now);
    const i = conditions.findIndex((x) => x.type === type);
    if (i >= 0) conditions[i] = next;
    else conditions.push(next);
  };
  set(ConditionType.Degraded, { status: 'True', reason, message });
  set(ConditionType.Ready, { status: 'False', reason, message });
  // A failed reconcile has not observed this generation; a spec or a conflict it could judge has.
  const observedGeneration =
    reason === 'ReconcileFailed'
      ? mtp.status?.observedGeneration
      : (generation ?? mtp.status?.observedGeneration);
  const status: MTProxyStatus = { ...mtp.status, conditions };
  if (observedGeneration !== undefined) status.observedGeneration = observedGeneration;
  return status;
}

function observedStatus(mtp: MTProxy, inputs: StatusInputs): MTProxyStatus {
  const generation = mtp.metadata.generation;
  const previous = mtp.status?.conditions;
  const progressingNow = progressing(inputs);
  const degradedNow = degraded(inputs);
  const wanted: [string, ConditionInput][] = [
    [ConditionType.Ready, ready(inputs, degradedNow, progressingNow)],
    [ConditionType.Progressing, progressingNow],
    [ConditionType.Degraded, degradedNow],
    [ConditionType.SecretsReady, inputs.secrets],
    [ConditionType.ExternalAddressResolved, inputs.externalAddress],
  ];
  if (inputs.adTag) wanted.push([ConditionType.AdTagActive, inputs.adTag]);
  if (inputs.users) wanted.push([ConditionType.UsersReady, inputs.users]);
  if (inputs.sharedState) wanted.push([ConditionType.SharedStateReady, inputs.sharedState]);
  if (inputs.fakeTlsProfile) wanted.push([ConditionType.FakeTLSProfile, inputs.fakeTlsProfile]);
  const st = inputs.deployment?.status ?? {};
  const status: MTProxyStatus = {
    observedGeneration: generation,
    conditions: wanted.map(([type, c]) => mergeCondition(previous, type, c, generation, inputs.now)),
    replicas: st.replicas ?? 0,
    readyReplicas: st.readyReplicas ?? 0,
    updatedReplicas: st.updatedReplicas ?? 0,
    selector: inputs.selector,
    endpoints: [...inputs.endpoints],
  };
  const optional: Partial<MTProxyStatus> = {
    mode: inputs.mode,
    image: inputs.image,
    secretName: inputs.secrets.secretName,
    linksSecretName: inputs.linksSecretName,
    secretsCount: inputs.secrets.count,
    secretsFingerprint: inputs.secrets.fingerprint,
    usersSecretName: inputs.users?.secretName,
    users: inputs.users ? [...inputs.users.list] : undefined,
    externalIP: inputs.externalAddress.ip,
    lastRestartTime: inputs.restart.lastRestartTime,
    nextRestartTime: inputs.restart.nextRestartTime,
    restartSchedule: inputs.restart.restartSchedule,
  };
  for (const [k, v] of Object.entries(optional)) {
    if (v !== undefined) (status as Record<string, unknown>)[k] = v;
  }
  return status;
}

/**
 * The FakeTLSProfile condition: how the pods shape their fake-TLS answers. Each pod measures the
 * site itself (from its own egress, the path a censor compares with; no API rights needed; no
 * single measuring point to fail), so this condition says what the pods were told to do and where
 * the measured state is: each pod's /stats (tls_profile_*) and /metrics
 * (mtproxy_fake_tls_profile_age_seconds). undefined without fake TLS.
 */
export function fakeTlsProfileCondition(settings: {
  readonly modes: readonly string[];
  readonly fakeTLS: {
    readonly domain: string | undefined;
    readonly mask: { readonly enabled: boolean | undefined; readonly host?: string; readonly port?: number };
    readonly profile: { readonly mode: 'auto' | 'off'; readonly refreshIntervalSeconds: number | undefined };
  };
}): ConditionInput | undefined {
  const f = settings.fakeTLS;
  if (!f.domain || !settings.modes.includes('tls')) return undefined;
  if (f.profile.mode === 'off') {
    return {
      status: 'False',
      reason: 'ProfileOff',
      message: 'spec.fakeTLS.profile.mode is off: answers use the fallback shape (README, Stealth)',
    };
  }
  if (f.mask.enabled === false) {
    return {
      status: 'False',
      reason: 'MaskingOff',
      message:
        'the site profile is measured at the mask target; with masking off answers use the fallback shape',
    };
  }
  const target = `${f.mask.host ?? f.domain}:${f.mask.port ?? 443}`;
  const hours = (f.profile.refreshIntervalSeconds ?? 21600) / 3600;
  return {
    status: 'True',
    reason: 'MeasuredByEachPod',
    message:
      `each pod measures ${target} (SNI ${f.domain}) at start and every ${hours} h and answers with its shape; ` +
      'per-pod source and age: /stats tls_profile_*, /metrics mtproxy_fake_tls_profile_age_seconds',
  };
}
