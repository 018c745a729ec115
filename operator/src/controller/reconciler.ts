// One level-triggered reconcile of one MTProxy: read it, compute the children with the pure
// renderers, apply them with server-side apply (field manager mtkube-operator, force: drift is
// corrected), write status. Nothing here depends on which event woke it up.
import { type ProxySettings, resolveSpec, SpecError } from '../api/defaults.js';
import {
  API_VERSION,
  type Condition,
  ConditionType,
  KIND,
  type MTProxy,
  type MTProxyStatus,
} from '../api/types.js';
import type { Logger } from '../logging.js';
import { renderDeployment } from '../render/deployment.js';
import { externalIpEnv, USERS_FILE_KEY } from '../render/env.js';
import { ANNOTATIONS, childNames, selectorString } from '../render/meta.js';
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
  type ConditionInput,
  type DeploymentObservation,
  fakeTlsProfileCondition,
  mergeCondition,
  renderStatus,
  rolloutState,
  type UsersStatusInput,
} from '../render/status.js';
import { describeLeft, renderUsersSecret, usersStatus } from '../render/users.js';
import type { Clock } from '../schedule/clock.js';
import { decideRoll, type RollDecision } from '../schedule/roll.js';
import type { EventSink } from './events.js';
import type { KubeClient, KubeObject } from './kube-client.js';
import { errorMessage } from './redact.js';
import { ensureSecrets, readAdTagSecret, type SecretsResult, type UsersOutcome } from './secrets.js';

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
  /** Whether ServiceMonitors can be created (their CRD is installed); cached by the caller. */
  readonly serviceMonitorsServed: () => Promise<boolean>;
}

export interface ReconcileResult {
  /** Reconcile again after this long (scheduled work, waiting for a load balancer). */
  readonly requeueAfterMs?: number | undefined;
}

interface ServiceObject extends KubeObject {
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] } };
}

type DeploymentObject = KubeObject &
  DeploymentObservation & {
    spec?: DeploymentObservation['spec'] & {
      template?: { metadata?: { annotations?: Record<string, string> } };
    };
  };

const MISSING_SECRET_RETRY_MS = 30_000;

export class Reconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(namespace: string, name: string): Promise<ReconcileResult> {
    const mtp = this.deps.mtproxies.get(name, namespace);
    // Gone: garbage collection removes the owned children; a retained Secret stays on purpose.
    if (!mtp || mtp.metadata.deletionTimestamp) return {};
    let settings: ProxySettings;
    try {
      settings = resolveSpec(mtp.spec, { defaultImage: this.deps.defaultImage });
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      await this.#reportInvalidSpec(mtp, err);
      return {};
    }
    return this.#reconcileValid(mtp, settings);
  }

  /** Best effort after a failed reconcile: Degraded with the (redacted) error. */
  async reportFailure(namespace: string, name: string, err: unknown): Promise<void> {
    const mtp = this.deps.mtproxies.get(name, namespace);
    if (!mtp) return;
    const message = errorMessage(err);
    const conditions = this.#patchConditions(mtp, [
      [ConditionType.Degraded, { status: 'True', reason: 'ReconcileFailed', message }],
      [ConditionType.Ready, { status: 'False', reason: 'ReconcileFailed', message }],
    ]);
    try {
      await this.#writeStatus(mtp, { ...mtp.status, conditions });
    } catch (statusErr) {
      this.deps.log.debug('could not write the failure to status', { error: errorMessage(statusErr) });
    }
  }

  async #reconcileValid(mtp: MTProxy, s: ProxySettings): Promise<ReconcileResult> {
    const { client, clock } = this.deps;
    const ns = mtp.metadata.namespace;
    const names = childNames(mtp.metadata.name);
    const now = clock.now();

    const { env: secrets, users } = await this.#secrets(mtp, s);
    const tag = await this.#adTag(mtp, s);

    const service = await client.apply<ServiceObject>(renderClientService(mtp, names.service, s));
    const ingress = service.status?.loadBalancer?.ingress?.[0];
    const lbIP = ingress?.ip;
    const host = s.publicAddress.host ?? ingress?.hostname ?? ingress?.ip ?? s.publicAddress.externalIP;
    const endpoint = host ? { host, port: s.publicAddress.port } : undefined;
    const external = this.#externalAddress(s, lbIP);

    const current = this.deps.deployments.get(names.deployment, ns) as DeploymentObject | undefined;
    let deployment: DeploymentObservation | undefined = current;
    let roll: RollDecision | undefined;
    if (secrets.ok && tag.ok && users.ok) {
      // The users file first, so a pod that mounts it for the first time finds it.
      const usersSecretName = s.users.length > 0 ? names.users : undefined;
      if (usersSecretName) await client.apply(renderUsersSecret(mtp, usersSecretName, users.served));
      const state = rolloutState(current);
      roll = decideRoll({
        now,
        schedule: s.restart,
        seed: mtp.metadata.uid ?? mtp.metadata.name,
        paused: s.paused,
        rolloutInProgress: state === 'progressing' || state === 'stuck',
        status: mtp.status ?? {},
        templateRestartedAt: current?.spec?.template?.metadata?.annotations?.[ANNOTATIONS.restartedAt],
      });
      deployment = await client.apply<DeploymentObject>(
        renderDeployment(mtp, names.deployment, s, {
          secretsRef: secrets.secrets.length > 0 ? { name: secrets.secretName, key: secrets.key } : undefined,
          usersSecretName,
          loadBalancerIP: lbIP,
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
        await client.apply(empty);
      }
      await this.#rollEvents(mtp, roll);
      const named: NamedSecret[] = [
        ...envSecretNames(secrets.secrets),
        ...users.served.map((u) => ({
          name: u.settings.name,
          secret: u.secret,
          enabled: u.settings.enabled,
        })),
      ];
      const links = endpoint ? renderLinks(s, named, endpoint.host, endpoint.port) : [];
      await client.apply(renderLinksSecret(mtp, names.links, links, endpoint));
    }

    await this.#optionalChildren(mtp, s);

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
      externalAddress: external,
      users: this.#usersStatus(mtp, s, users, names.users),
      adTag: this.#adTagCondition(s, tag, external, deployment),
      fakeTlsProfile: fakeTlsProfileCondition(s),
      deployment,
      paused: s.paused,
      mode: s.effectiveMode,
      image: s.image,
      selector: selectorString(mtp),
      linksSecretName: secrets.ok && users.ok ? names.links : undefined,
      endpoints: endpoint ? [endpoint] : [],
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
    if (!tag.ok) {
      // Surface the missing tag as Degraded too: the pods are not updated until it is fixed.
      const degraded = status.conditions?.find((c) => c.type === ConditionType.Degraded);
      if (degraded && degraded.status !== 'True') {
        Object.assign(
          degraded,
          mergeCondition(
            mtp.status?.conditions,
            ConditionType.Degraded,
            {
              status: 'True',
              reason: tag.reason,
              message: tag.message,
            },
            mtp.metadata.generation,
            now,
          ),
        );
      }
    }
    await this.#writeStatus(mtp, status);

    // A load balancer address arriving is a Service event; only scheduled work and Secrets we
    // cannot watch (unlabelled user Secrets) need a timer.
    const waits = [roll?.requeueAfterMs];
    if (!secrets.ok || !tag.ok || !users.ok || (users.ok && users.left.length > 0)) {
      waits.push(MISSING_SECRET_RETRY_MS);
    }
    const defined = waits.filter((w): w is number => w !== undefined);
    return { requeueAfterMs: defined.length > 0 ? Math.min(...defined) : undefined };
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

  async #adTag(
    mtp: MTProxy,
    s: ProxySettings,
  ): Promise<{ ok: true; value: string | undefined } | { ok: false; reason: string; message: string }> {
    if (!s.adTag) return { ok: true, value: undefined };
    if (s.adTag.kind === 'value') return { ok: true, value: s.adTag.value };
    return readAdTagSecret(this.deps.client, mtp.metadata.namespace, s.adTag.ref);
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
    tag: { ok: true; value: string | undefined } | { ok: false; reason: string; message: string },
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

  /** Metrics Service, PodDisruptionBudget, ServiceMonitor: applied when wanted, removed when not. */
  async #optionalChildren(mtp: MTProxy, s: ProxySettings): Promise<void> {
    const { client } = this.deps;
    const ns = mtp.metadata.namespace;
    const names = childNames(mtp.metadata.name);
    // Removal of switched-off children happens when the spec changed; nothing else creates them.
    const specChanged = mtp.status?.observedGeneration !== mtp.metadata.generation;

    if (s.metrics.enabled) await client.apply(renderMetricsService(mtp, names.metricsService, s));
    else if (this.deps.services.get(names.metricsService, ns)) {
      await client.delete({ apiVersion: 'v1', kind: 'Service', namespace: ns, name: names.metricsService });
    }

    const pdb = renderPodDisruptionBudget(mtp, names.pdb, s);
    if (pdb) await client.apply(pdb);
    else if (specChanged) {
      await client.delete({
        apiVersion: 'policy/v1',
        kind: 'PodDisruptionBudget',
        namespace: ns,
        name: names.pdb,
      });
    }

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
    else {
      await client.delete({
        apiVersion: SERVICE_MONITOR_API,
        kind: 'ServiceMonitor',
        namespace: ns,
        name: names.serviceMonitor,
      });
    }
  }

  async #reportInvalidSpec(mtp: MTProxy, err: SpecError): Promise<void> {
    const message = err.message;
    const conditions = this.#patchConditions(mtp, [
      [ConditionType.Degraded, { status: 'True', reason: 'InvalidSpec', message }],
      [ConditionType.Ready, { status: 'False', reason: 'InvalidSpec', message }],
    ]);
    if (mtp.status?.observedGeneration !== mtp.metadata.generation) {
      await this.deps.events.record(mtp, 'Warning', 'InvalidSpec', message);
    }
    await this.#writeStatus(mtp, { ...mtp.status, observedGeneration: mtp.metadata.generation, conditions });
  }

  #patchConditions(mtp: MTProxy, updates: [string, ConditionInput][]): Condition[] {
    const now = this.deps.clock.now();
    const conditions = [...(mtp.status?.conditions ?? [])];
    for (const [type, input] of updates) {
      const next = mergeCondition(mtp.status?.conditions, type, input, mtp.metadata.generation, now);
      const i = conditions.findIndex((c) => c.type === type);
      if (i >= 0) conditions[i] = next;
      else conditions.push(next);
    }
    return conditions;
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
