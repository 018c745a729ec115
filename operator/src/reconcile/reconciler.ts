// One level-triggered reconcile of one MTProxy, in phases: secrets (client secrets, users' secrets,
// ad tag), service (the client Service and the address it gives), workload (users file, Deployment,
// links), monitoring (metrics Service, PDB, ServiceMonitor), status. Each phase is short, renders
// with pure functions and applies with server-side apply through OwnedWriter (only over our own
// objects); each returns a ReconcileResult and combine() keeps the soonest requeue. The status is
// computed by one pure function (render/status.ts) from what the phases observed. Nothing here
// depends on which event woke it up.
import { randomBytes } from 'node:crypto';
import { type ProxySettings, resolveSpec, SpecError } from '../api/defaults.js';
import { PolicyError, type ProxyPolicy, policyProblems, withPolicy } from '../api/policy.js';
import { API_VERSION, KIND, type MTProxy, type MTProxyStatus } from '../api/types.js';
import type { EventSink } from '../controller/events.js';
import type { KubeClient, KubeObject } from '../controller/kube-client.js';
import { OwnedWriter, OwnershipConflict } from '../controller/ownership.js';
import { errorMessage, redact } from '../controller/redact.js';
import type { Logger } from '../logging.js';
import { renderDeployment } from '../render/deployment.js';
import { externalIpEnv, USERS_FILE_KEY } from '../render/env.js';
import { ANNOTATIONS, childNames, selectorString } from '../render/meta.js';
import { proxyConfigProblem } from '../render/proxy-contract.js';
import {
  envSecretNames,
  type NamedSecret,
  type RandomBytes,
  renderLinks,
  renderLinksSecret,
  secretsChecksum,
  secretsFingerprint,
} from '../render/secrets.js';
import {
  renderClientService,
  renderMetricsService,
  renderPodDisruptionBudget,
  renderServiceMonitor,
  SERVICE_MONITOR_API,
} from '../render/service.js';
import {
  renderProxyDataClaim,
  renderRedisClaim,
  renderRedisDeployment,
  renderRedisService,
  renderStateSecret,
  stateNames,
} from '../render/shared-state.js';
import {
  type ConditionInput,
  type DeploymentObservation,
  fakeTlsProfileCondition,
  renderStatus,
  rolloutState,
  type UsersStatusInput,
} from '../render/status.js';
import { describeLeft, renderUsersSecret, usersStatus } from '../render/users.js';
import type { Clock } from '../schedule/clock.js';
import { decideRoll, type RollDecision } from '../schedule/roll.js';
import { combine, DONE, RETRY_MS, type ReconcileResult, requeueAfter } from './result.js';
import {
  ensureSecrets,
  notAllowedMessage,
  readAdTagSecret,
  type SecretsResult,
  secretAllows,
  type UsersOutcome,
} from './secrets.js';

/** Read access to the informer caches. */
export interface ObjectReader<T> {
  get(name: string, namespace: string): T | undefined;
}

export interface ReconcilerDeps {
  readonly client: KubeClient;
  readonly mtproxies: ObjectReader<MTProxy>;
  readonly deployments: ObjectReader<KubeObject>;
  readonly services: ObjectReader<KubeObject>;
  /** The Secrets the operator labelled (children, retained secrets). */
  readonly secrets: ObjectReader<KubeObject>;
  readonly clock: Clock;
  readonly random: RandomBytes;
  readonly events: EventSink;
  readonly log: Logger;
  readonly defaultImage: string;
  /** What MTProxy authors may ask for (images, host network, ServiceAccount). */
  readonly policy: ProxyPolicy;
  /** Whether ServiceMonitors can be created (their CRD is installed); cached by the caller. */
  readonly serviceMonitorsServed: () => Promise<boolean>;
}

export type { ReconcileResult } from './result.js';

interface ServiceObject extends KubeObject {
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}

type DeploymentObject = KubeObject &
  DeploymentObservation & {
    spec?: DeploymentObservation['spec'] & {
      template?: { metadata?: { annotations?: Record<string, string> } };
    };
  };

type AdTagOutcome =
  | { readonly ok: true; readonly value: string | undefined }
  | { readonly ok: false; readonly reason: string; readonly message: string };

/** What the secrets phase found: everything later phases and the status need. */
interface SecretsPhase {
  readonly secrets: SecretsResult['env'];
  readonly users: UsersOutcome;
  readonly tag: AdTagOutcome;
  /** All three usable: the workload may be updated. */
  readonly ready: boolean;
  readonly result: ReconcileResult;
}

interface ServicePhase {
  readonly lbIP: string | undefined;
  readonly endpoint: { host: string; port: number } | undefined;
  readonly external: ConditionInput & { ip: string | undefined };
}

interface WorkloadPhase {
  readonly deployment: DeploymentObservation | undefined;
  readonly roll: RollDecision | undefined;
  readonly result: ReconcileResult;
}

const QUOTAS_PER_POD =
  'spec.users set quotas and spec.replicas is above 1 without spec.sharedState: each pod counts quotas on its own and a replaced pod starts from zero; set spec.sharedState (redis.urlSecretRef or managed: true)';

export class Reconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const mtp = this.deps.mtproxies.get(name, namespace);
    // Gone: garbage collection removes the owned children; a retained Secret stays on purpose.
    if (!mtp || mtp.metadata.deletionTimestamp) return DONE;
    let settings: ProxySettings;
    try {
      settings = resolveSpec(mtp.spec, { defaultImage: this.deps.defaultImage });
      const forbidden = policyProblems(settings, this.deps.policy);
      if (forbidden.length > 0) throw new PolicyError(forbidden);
      settings = withPolicy(settings, this.deps.policy);
      const refused = proxyConfigProblem(settings);
      if (refused) throw new SpecError([redact(refused)]);
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      const reason = err instanceof PolicyError ? 'NotAllowed' : 'InvalidSpec';
      if (specUnobserved(mtp)) {
        await this.deps.events.record(mtp, 'Warning', reason, err.message);
      }
      await this.#writeBlocked(mtp, reason, err.message);
      return DONE;
    }
    try {
      return await this.#phases(mtp, settings);
    } catch (err) {
      if (!(err instanceof OwnershipConflict)) throw err;
      await this.deps.events.record(mtp, 'Warning', 'Conflict', err.message);
      await this.#writeBlocked(mtp, 'Conflict', err.message);
      // Objects of other owners are not watched: look again later.
      return requeueAfter(RETRY_MS.conflict);
    }
  }

  /** Best effort after a failed reconcile: Degraded with the (redacted) error. */
  async reportFailure(namespace: string, name: string, err: unknown): Promise<void> {
    const mtp = this.deps.mtproxies.get(name, namespace);
    if (!mtp) return;
    try {
      await this.#writeBlocked(mtp, 'ReconcileFailed', errorMessage(err));
    } catch (statusErr) {
      this.deps.log.debug('could not write the failure to status', { error: errorMessage(statusErr) });
    }
  }

  async #phases(mtp: MTProxy, s: ProxySettings): Promise<ReconcileResult> {
    const writer = new OwnedWriter(this.deps.client, mtp);
    const now = this.deps.clock.now();
    const secrets = await this.#secretsPhase(mtp, s);
    const service = await this.#servicePhase(mtp, s, writer);
    const workload = await this.#workloadPhase(mtp, s, writer, secrets, service, now);
    await this.#monitoringPhase(mtp, s, writer);
    const sharedState = await this.#sharedStatePhase(mtp, s, writer);
    await this.#statusPhase(mtp, s, secrets, service, workload, sharedState, now);
    return combine(secrets.result, workload.result);
  }

  /** Client secrets, users' secrets and the ad tag: read or generated, never written into a spec. */
  async #secretsPhase(mtp: MTProxy, s: ProxySettings): Promise<SecretsPhase> {
    const { env: secrets, users } = await this.#secrets(mtp, s);
    const tag = await this.#adTag(mtp, s);
    const ready = secrets.ok && tag.ok && users.ok;
    // Secrets we may not watch (not labelled for us) can appear or be fixed at any time.
    const waiting = !ready || (users.ok && users.left.length > 0);
    return { secrets, users, tag, ready, result: waiting ? requeueAfter(RETRY_MS.missingSecret) : DONE };
  }

  /** The client Service, and the address clients and the middle proxies get from it. */
  async #servicePhase(mtp: MTProxy, s: ProxySettings, writer: OwnedWriter): Promise<ServicePhase> {
    const names = childNames(mtp.metadata.name);
    const service = await writer.apply<ServiceObject>(renderClientService(mtp, names.service, s));
    const ingress = service.status?.loadBalancer?.ingress?.[0];
    const lbIP = ingress?.ip;
    const host = s.publicAddress.host ?? ingress?.hostname ?? ingress?.ip ?? s.publicAddress.externalIP;
    return {
      lbIP,
      endpoint: host ? { host, port: s.publicAddress.port } : undefined,
      external: this.#externalAddress(s, lbIP),
    };
  }

  /** Users file, Deployment (with the daily roll) and links; only when every secret is usable. */
  async #workloadPhase(
    mtp: MTProxy,
    s: ProxySettings,
    writer: OwnedWriter,
    found: SecretsPhase,
    service: ServicePhase,
    now: number,
  ): Promise<WorkloadPhase> {
    const ns = mtp.metadata.namespace;
    const names = childNames(mtp.metadata.name);
    const current = this.deps.deployments.get(names.deployment, ns) as DeploymentObject | undefined;
    const { secrets, users, tag } = found;
    if (!found.ready || !secrets.ok || !users.ok || !tag.ok) {
      return { deployment: current, roll: undefined, result: DONE };
    }
    // The users file first, so a pod that mounts it for the first time finds it.
    const usersSecretName = s.users.length > 0 ? names.users : undefined;
    if (usersSecretName) await writer.apply(renderUsersSecret(mtp, usersSecretName, users.served));
    const state = rolloutState(current);
    const roll = decideRoll({
      now,
      schedule: s.restart,
      seed: mtp.metadata.uid ?? mtp.metadata.name,
      paused: s.paused,
      rolloutInProgress: state === 'progressing' || state === 'stuck',
      status: mtp.status ?? {},
      templateRestartedAt: current?.spec?.template?.metadata?.annotations?.[ANNOTATIONS.restartedAt],
    });
    const deployment = await writer.apply<DeploymentObject>(
      renderDeployment(mtp, names.deployment, s, {
        secretsRef: secrets.secrets.length > 0 ? { name: secrets.secretName, key: secrets.key } : undefined,
        usersSecretName,
        loadBalancerIP: service.lbIP,
        // SECRET and TAG are read once at start; the users file is reloaded live, so users
        // are left out and a change to them never rolls the pods.
        secretsChecksum: secretsChecksum(secrets.secrets, tag.value),
        restartedAt: roll.restartedAt,
      }),
    );
    // No users left: the pods no longer mount the file; emptied, it keeps no secret (the operator
    // never deletes a Secret; garbage collection removes it with the MTProxy).
    const stale = this.deps.secrets.get(names.users, ns) as { data?: Record<string, string> } | undefined;
    const empty = renderUsersSecret(mtp, names.users, []);
    if (!usersSecretName && stale && stale.data?.[USERS_FILE_KEY] !== empty.data[USERS_FILE_KEY]) {
      await writer.apply(empty);
    }
    await this.#rollEvents(mtp, roll);
    const named: NamedSecret[] = [
      ...envSecretNames(secrets.secrets),
      ...users.served.map((u) => ({ name: u.settings.name, secret: u.secret, enabled: u.settings.enabled })),
    ];
    const endpoint = service.endpoint;
    const links = endpoint ? renderLinks(s, named, endpoint.host, endpoint.port) : [];
    await writer.apply(renderLinksSecret(mtp, names.links, links, endpoint));
    return { deployment, roll, result: requeueAfterRoll(roll) };
  }

  /** Everything the phases observed -> status (one pure function), written if it changed. */
  async #statusPhase(
    mtp: MTProxy,
    s: ProxySettings,
    found: SecretsPhase,
    service: ServicePhase,
    workload: WorkloadPhase,
    sharedState: ConditionInput | undefined,
    now: number,
  ): Promise<void> {
    const { secrets, users, tag } = found;
    const names = childNames(mtp.metadata.name);
    const roll = workload.roll;
    const status = renderStatus(mtp, {
      now,
      secrets: secrets.ok
        ? {
            status: 'True',
            reason: secrets.generated > 0 ? 'SecretsGenerated' : 'SecretsAvailable',
            message: `${secrets.secrets.length} secret(s) in Secret ${secrets.secretName}`,
            secretName: secrets.secretName,
            count: secrets.secrets.length,
            fingerprint: secretsFingerprint(secrets.secrets),
          }
        : {
            status: 'False',
            reason: secrets.reason,
            message: secrets.message,
            secretName: secrets.secretName,
            count: undefined,
            fingerprint: undefined,
          },
      externalAddress: service.external,
      users: this.#usersStatus(mtp, s, users, names.users),
      adTag: this.#adTagCondition(s, tag, service.external, workload.deployment),
      adTagProblem: tag.ok ? undefined : { reason: tag.reason, message: tag.message },
      sharedState,
      fakeTlsProfile: fakeTlsProfileCondition(s),
      deployment: workload.deployment,
      paused: s.paused,
      mode: s.effectiveMode,
      image: s.image,
      selector: selectorString(mtp),
      linksSecretName: secrets.ok && users.ok ? names.links : undefined,
      endpoints: service.endpoint ? [service.endpoint] : [],
      restart: roll
        ? {
            lastRestartTime: roll.lastRestartTime,
            nextRestartTime: roll.nextRestartTime,
            restartSchedule: roll.restartSchedule,
          }
        : {
            lastRestartTime: mtp.status?.lastRestartTime,
            nextRestartTime: mtp.status?.nextRestartTime,
            restartSchedule: mtp.status?.restartSchedule,
          },
    });
    await this.#writeStatus(mtp, status);
  }

  async #secrets(mtp: MTProxy, s: ProxySettings): Promise<SecretsResult> {
    const links = childNames(mtp.metadata.name).links;
    const result = await ensureSecrets(this.deps.client, mtp, s, this.deps.random);
    const { env, users } = result;
    if (env.ok && env.generated > 0) {
      await this.deps.events.record(
        mtp,
        'Normal',
        'SecretsGenerated',
        `Generated ${env.generated} secret(s) in Secret ${env.secretName}; links are in Secret ${links}`,
      );
    }
    if (env.ok && env.retired > 0) {
      await this.deps.events.record(
        mtp,
        'Warning',
        'SecretsRetired',
        `${env.retired} secret(s) no longer served (spec.secrets.count lowered); raise it to bring them back`,
      );
    }
    if (users.ok && users.generated.length > 0) {
      await this.deps.events.record(
        mtp,
        'Normal',
        'UserSecretsGenerated',
        `Generated secrets for user(s) ${users.generated.join(', ')} in Secret ${users.source}; links are in Secret ${links}`,
      );
    }
    for (const r of users.ok ? users.rotated : []) {
      await this.deps.events.record(
        mtp,
        'Normal',
        'UserSecretRotated',
        `New secret for user ${r.name} (secretRotation ${r.rotation}); its old links stop working once the pods reload the users file; new links are in Secret ${links}`,
      );
    }
    return result;
  }

  /** UsersReady and status.users; undefined without users (the condition does not apply). */
  #usersStatus(
    mtp: MTProxy,
    s: ProxySettings,
    users: UsersOutcome,
    usersSecretName: string,
  ): UsersStatusInput {
    if (s.users.length === 0) return undefined;
    if (!users.ok) {
      // The pods keep the users file they have; status keeps describing it.
      return {
        status: 'False',
        reason: users.reason,
        message: users.message,
        blocking: true,
        list: mtp.status?.users ?? [],
        secretName: mtp.status?.usersSecretName,
      };
    }
    const list = usersStatus(s.users, users.served);
    const served = `${users.served.length} of ${s.users.length} user(s) in Secret ${usersSecretName}`;
    if (users.left.length > 0) {
      const duplicate = users.left.every((l) => l.why === 'duplicate');
      return {
        status: 'False',
        reason: duplicate ? 'DuplicateUserSecret' : 'UserSecretsMissing',
        message: `${served}; left out (${describeLeft(users.left)}) in Secret ${users.source}`,
        blocking: false,
        list,
        secretName: usersSecretName,
      };
    }
    return {
      status: 'True',
      reason: 'UsersAvailable',
      message: `${served}; their secrets are in Secret ${users.source}`,
      blocking: false,
      list,
      secretName: usersSecretName,
    };
  }

  async #adTag(mtp: MTProxy, s: ProxySettings): Promise<AdTagOutcome> {
    if (!s.adTag) return { ok: true, value: undefined };
    if (s.adTag.kind === 'value') return { ok: true, value: s.adTag.value };
    return readAdTagSecret(this.deps.client, mtp.metadata.namespace, s.adTag.ref, mtp.metadata.name);
  }

  #externalAddress(s: ProxySettings, lbIP: string | undefined): ConditionInput & { ip: string | undefined } {
    const env = externalIpEnv(s, lbIP);
    switch (s.publicAddress.externalIPSource) {
      case 'Explicit':
        return {
          status: 'True',
          reason: 'Explicit',
          message: 'from spec.publicAddress.externalIP',
          ip: env?.value,
        };
      case 'LoadBalancer':
        return lbIP
          ? { status: 'True', reason: 'LoadBalancer', message: 'the Service load balancer address', ip: lbIP }
          : {
              status: 'False',
              reason: 'WaitingForLoadBalancer',
              message: 'the Service has no load balancer IP yet',
              ip: undefined,
            };
      case 'NodeHostIP':
        return {
          status: 'True',
          reason: 'NodeHostIP',
          message: "each pod uses its node's address (status.hostIP)",
          ip: undefined,
        };
      case 'Detect':
        return {
          status: 'Unknown',
          reason: 'DetectedByProxy',
          message: 'the proxy detects its public IP at start; set spec.publicAddress.externalIP to be sure',
          ip: undefined,
        };
    }
  }

  #adTagCondition(
    s: ProxySettings,
    tag: AdTagOutcome,
    external: ConditionInput,
    deployment: DeploymentObservation | undefined,
  ): ConditionInput | undefined {
    if (!s.adTag) return undefined;
    if (!tag.ok) return { status: 'False', reason: tag.reason, message: tag.message };
    if (s.effectiveMode !== 'middle') {
      return { status: 'False', reason: 'DirectMode', message: 'an ad tag needs the middle proxy' };
    }
    if (external.status === 'False') {
      return {
        status: 'False',
        reason: 'ExternalAddressUnresolved',
        message: 'Telegram middle proxies need the public IP before they show the sponsored channel',
      };
    }
    if ((deployment?.status?.availableReplicas ?? 0) === 0) {
      return { status: 'False', reason: 'NotAvailable', message: 'no proxy pod is available' };
    }
    return { status: 'True', reason: 'MiddleProxy', message: 'the tag is sent through the middle proxies' };
  }

  async #rollEvents(mtp: MTProxy, roll: RollDecision): Promise<void> {
    if (roll.action === 'restart') {
      await this.deps.events.record(
        mtp,
        'Normal',
        'DailyRestart',
        `Rolling restart for the window of ${roll.dueAt}; next at ${roll.nextRestartTime}`,
      );
    } else if (roll.action === 'postpone') {
      await this.deps.events.record(
        mtp,
        'Normal',
        'RestartPostponed',
        `Daily restart due at ${roll.dueAt} waits for the rollout in progress`,
      );
    } else if (roll.action === 'skip-paused') {
      await this.deps.events.record(
        mtp,
        'Normal',
        'RestartSkipped',
        `Daily restart due at ${roll.dueAt} skipped: paused`,
      );
    }
  }

  /**
   * spec.sharedState: the managed Redis and its Secret, Service and claim; the /data claim of a
   * single pod with quotas; and the SharedStateReady condition (undefined when nothing asks for a
   * store). Quotas over several replicas without a store are reported, with a Warning Event.
   */
  async #sharedStatePhase(
    mtp: MTProxy,
    s: ProxySettings,
    writer: OwnedWriter,
  ): Promise<ConditionInput | undefined> {
    const { client } = this.deps;
    const ns = mtp.metadata.namespace;
    const dataClaim = renderProxyDataClaim(mtp, s);
    if (dataClaim) await writer.apply(dataClaim);
    switch (s.sharedState.kind) {
      case 'none':
        if (!s.quotasPerPod) return undefined;
        if (specUnobserved(mtp)) {
          await this.deps.events.record(mtp, 'Warning', 'QuotasPerPod', QUOTAS_PER_POD);
        }
        return { status: 'False', reason: 'QuotasPerPod', message: QUOTAS_PER_POD };
      case 'external': {
        const ref = s.sharedState.ref;
        const secret = await client.find<{ data?: Record<string, string> }>({
          apiVersion: 'v1',
          kind: 'Secret',
          namespace: ns,
          name: ref.name,
        });
        if (secret && !secretAllows(secret, mtp.metadata.name)) {
          return {
            status: 'False',
            reason: 'SecretNotAllowed',
            message: notAllowedMessage(ref.name, mtp.metadata.name),
          };
        }
        if (secret?.data?.[ref.key] === undefined) {
          return {
            status: 'False',
            reason: 'StoreSecretNotFound',
            message: `key ${ref.key} of Secret ${ref.name} (spec.sharedState.redis.urlSecretRef) does not exist`,
          };
        }
        return { status: 'True', reason: 'External', message: `STATE_URL from Secret ${ref.name}` };
      }
      case 'managed': {
        const names = stateNames(mtp.metadata.name);
        const existing = await client.find<{ data?: Record<string, string> }>({
          apiVersion: 'v1',
          kind: 'Secret',
          namespace: ns,
          name: names.secret,
        });
        const kept = existing?.data?.password;
        const password = kept
          ? Buffer.from(kept, 'base64').toString('utf8')
          : randomBytes(24).toString('hex');
        await writer.apply(renderStateSecret(mtp, password));
        for (const child of [renderRedisClaim(mtp, s), renderRedisService(mtp, s)]) {
          if (child) await writer.apply(child);
        }
        const redis = renderRedisDeployment(mtp, s);
        const applied = redis
          ? await writer.apply<{ status?: { readyReplicas?: number } }>(redis)
          : undefined;
        return (applied?.status?.readyReplicas ?? 0) > 0
          ? { status: 'True', reason: 'ManagedRedisReady', message: `Redis ${names.redis} is ready` }
          : {
              status: 'False',
              reason: 'ManagedRedisNotReady',
              message: `Redis ${names.redis} has no ready pod yet; the proxies use their fallbacks meanwhile`,
            };
      }
    }
  }

  /** Metrics Service, PodDisruptionBudget, ServiceMonitor: applied when wanted, removed when not. */
  async #monitoringPhase(mtp: MTProxy, s: ProxySettings, client: OwnedWriter): Promise<void> {
    const ns = mtp.metadata.namespace;
    const names = childNames(mtp.metadata.name);
    // Removal of switched-off children happens when the spec changed; nothing else creates them,
    // and only our own objects are removed (a PDB or ServiceMonitor of that name may be someone else's).
    const specChanged = specUnobserved(mtp);
    const removeIfOurs = (apiVersion: string, kind: string, name: string) =>
      client.deleteIfOwned({ apiVersion, kind, namespace: ns, name });

    if (s.metrics.enabled) await client.apply(renderMetricsService(mtp, names.metricsService, s));
    else if (this.deps.services.get(names.metricsService, ns)) {
      await removeIfOurs('v1', 'Service', names.metricsService);
    }

    const pdb = renderPodDisruptionBudget(mtp, names.pdb, s);
    if (pdb) await client.apply(pdb);
    else if (specChanged) await removeIfOurs('policy/v1', 'PodDisruptionBudget', names.pdb);

    const sm = renderServiceMonitor(mtp, names.serviceMonitor, s);
    if (!sm && !specChanged) return;
    if (!(await this.deps.serviceMonitorsServed())) {
      if (sm && specChanged) {
        await this.deps.events.record(
          mtp,
          'Warning',
          'ServiceMonitorUnavailable',
          'metrics.serviceMonitor.enabled is set but the cluster has no monitoring.coreos.com/v1 ServiceMonitor CRD',
        );
      }
      return;
    }
    if (sm) await client.apply(sm);
    else await removeIfOurs(SERVICE_MONITOR_API, 'ServiceMonitor', names.serviceMonitor);
  }

  async #writeBlocked(
    mtp: MTProxy,
    reason: 'InvalidSpec' | 'NotAllowed' | 'Conflict' | 'ReconcileFailed',
    message: string,
  ): Promise<void> {
    await this.#writeStatus(
      mtp,
      renderStatus(mtp, { now: this.deps.clock.now(), blocked: { reason, message } }),
    );
  }

  async #writeStatus(mtp: MTProxy, status: MTProxyStatus): Promise<void> {
    if (sameJson(mtp.status ?? {}, status)) return;
    await this.deps.client.apply(
      {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: mtp.metadata.name, namespace: mtp.metadata.namespace },
        status,
      },
      { status: true },
    );
  }
}

/** Structural equality of JSON values, ignoring key order. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bk = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return ak.length === bk.length && ak.every((k) => sameJson(ao[k], bo[k]));
}

/**
 * The spec changed since status last described it: warnings about the spec are recorded then
 * (once per change, not at every resync), and switched-off children are looked for then.
 */
function specUnobserved(mtp: MTProxy): boolean {
  return mtp.status?.observedGeneration !== mtp.metadata.generation;
}

/** The daily roll's next look, as a result. */
function requeueAfterRoll(roll: RollDecision): ReconcileResult {
  return roll.requeueAfterMs === undefined ? DONE : requeueAfter(roll.requeueAfterMs);
}
