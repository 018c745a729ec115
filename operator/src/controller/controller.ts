// watch -> queue -> reconcile. Informers on MTProxies and on the Deployments, Services and Secrets
// the operator labels; every event only enqueues the key of the MTProxy concerned; workers take
// keys from the de-duplicating queue and reconcile; failures retry with backoff; a periodic resync
// enqueues everything, because watches are not to be trusted alone.
import type { KubeConfig } from '@kubernetes/client-node';
import type { ProxyPolicy } from '../api/policy.js';
import { API_VERSION, type MTProxy, PLURAL } from '../api/types.js';
import type { Logger } from '../logging.js';
import { Reconciler } from '../reconcile/reconciler.js';
import { requeueDelay } from '../reconcile/result.js';
import { LABELS, MANAGED_BY } from '../render/meta.js';
import type { RandomBytes } from '../render/secrets.js';
import { SERVICE_MONITOR_API } from '../render/service.js';
import type { Clock } from '../schedule/clock.js';
import type { EventSink } from './events.js';
import { ResilientInformer } from './informer.js';
import type { KubeClient, KubeObject } from './kube-client.js';
import { CONTROLLER_NAME, type OperatorMetrics } from './metrics.js';
import { errorMessage } from './redact.js';
import { WorkQueue } from './work-queue.js';

export interface ControllerOptions {
  readonly kubeConfig: KubeConfig;
  readonly client: KubeClient;
  /** Namespaces to watch; empty means all. */
  readonly namespaces: readonly string[];
  readonly clock: Clock;
  readonly random: RandomBytes;
  readonly events: EventSink;
  readonly metrics: OperatorMetrics;
  readonly log: Logger;
  readonly defaultImage: string;
  readonly policy: ProxyPolicy;
  readonly concurrency?: number;
  readonly resyncPeriodMs?: number;
  readonly stallTimeoutMs?: number;
  /** Cap on a scheduled requeue, so a far-off restart is re-planned now and then. */
  readonly maxRequeueMs?: number;
  /** The leadership term: once aborted, no reconcile starts (and the client's requests fail). */
  readonly term?: AbortSignal;
  readonly observer?: ReconcileObserver;
}

/** Told when a reconcile starts and ends. */
export interface ReconcileObserver {
  started(key: string): void;
  finished(key: string): void;
}

type Key = string;

const keyOf = (namespace: string, name: string): Key => `${namespace}/${name}`;

/** Several informers (one per watched namespace, or one for all) read as one cache. */
class MultiCache<T extends KubeObject> {
  constructor(readonly informers: ResilientInformer<T>[]) {}
  get(name: string, namespace: string): T | undefined {
    for (const i of this.informers) {
      const o = i.get(name, namespace);
      if (o) return o;
    }
    return undefined;
  }
  list(): T[] {
    return this.informers.flatMap((i) => [...i.list()]);
  }
  get synced(): boolean {
    return this.informers.every((i) => i.synced);
  }
}

export class Controller {
  readonly queue: WorkQueue<Key>;
  readonly reconciler: Reconciler;
  readonly #mtproxies: MultiCache<MTProxy & KubeObject>;
  readonly #deployments: MultiCache<KubeObject>;
  readonly #services: MultiCache<KubeObject>;
  readonly #secrets: MultiCache<KubeObject>;
  readonly #workers: Promise<void>[] = [];
  #resyncTimer: NodeJS.Timeout | undefined;
  #smServed: { value: boolean; at: number } | undefined;
  #running = false;

  constructor(private readonly options: ControllerOptions) {
    const { metrics } = options;
    this.queue = new WorkQueue<Key>({ observer: metrics.queueObserver() });
    const namespaces = options.namespaces.length > 0 ? options.namespaces : [undefined];
    const make = <T extends KubeObject>(
      apiVersion: string,
      kind: string,
      plural: string,
      labelSelector: string | undefined,
      onChange: (obj: T) => void,
    ): MultiCache<T> =>
      new MultiCache<T>(
        namespaces.map((ns) => {
          const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
          const path = `${base}${ns ? `/namespaces/${ns}` : ''}/${plural}`;
          return new ResilientInformer<T>({
            kubeConfig: options.kubeConfig,
            path,
            resource: plural,
            labelSelector,
            list: () => options.client.list<T>({ apiVersion, kind, namespace: ns }, labelSelector),
            onChange,
            log: options.log,
            stallTimeoutMs: options.stallTimeoutMs,
            onRestart: (cause) => metrics.watchRestarts.inc({ resource: plural, cause }),
          });
        }),
      );
    const managed = `${LABELS.managedBy}=${MANAGED_BY}`;
    this.#mtproxies = make<MTProxy & KubeObject>(API_VERSION, 'MTProxy', PLURAL, undefined, (o) => {
      this.queue.add(keyOf(o.metadata.namespace, o.metadata.name));
      metrics.managedProxies.set(this.#mtproxies?.list().length ?? 0);
    });
    this.#deployments = make('apps/v1', 'Deployment', 'deployments', managed, (o) => this.#enqueueOwner(o));
    this.#services = make('v1', 'Service', 'services', managed, (o) => this.#enqueueOwner(o));
    this.#secrets = make('v1', 'Secret', 'secrets', LABELS.mtproxy, (o) => this.#enqueueForSecret(o));

    this.reconciler = new Reconciler({
      client: options.client,
      mtproxies: this.#mtproxies,
      deployments: this.#deployments,
      services: this.#services,
      secrets: this.#secrets,
      clock: options.clock,
      random: options.random,
      events: options.events,
      log: options.log,
      defaultImage: options.defaultImage,
      policy: options.policy,
      serviceMonitorsServed: () => this.#serviceMonitorsServed(),
    });
  }

  /** All caches have listed once. */
  get synced(): boolean {
    return (
      this.#mtproxies.synced && this.#deployments.synced && this.#services.synced && this.#secrets.synced
    );
  }

  get running(): boolean {
    return this.#running;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    // Children first, so the first reconciles see them in the caches.
    const children = [
      ...this.#deployments.informers,
      ...this.#services.informers,
      ...this.#secrets.informers,
    ];
    await Promise.all(children.map((i) => i.start()));
    await Promise.all(this.#mtproxies.informers.map((i) => i.start()));
    const resync = this.options.resyncPeriodMs ?? 300_000;
    this.#resyncTimer = setInterval(() => this.resync(), resync);
    this.#resyncTimer.unref();
    for (let i = 0; i < (this.options.concurrency ?? 2); i++) this.#workers.push(this.#work());
    this.options.log.info('controller started', {
      namespaces: this.options.namespaces.length > 0 ? this.options.namespaces : 'all',
    });
  }

  /** Stops taking work, lets running reconciles finish (bounded), stops the informers. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#resyncTimer);
    this.queue.shutDown();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.#workers),
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    this.#workers.length = 0;
    await Promise.all(this.#allInformers().map((i) => i.stop()));
    this.options.log.info('controller stopped');
  }

  #allInformers(): { start(): Promise<void>; stop(): Promise<void> }[] {
    return [
      ...this.#deployments.informers,
      ...this.#services.informers,
      ...this.#secrets.informers,
      ...this.#mtproxies.informers,
    ];
  }

  /** Enqueues every known MTProxy (what the periodic resync does). */
  resync(): void {
    for (const m of this.#mtproxies.list()) this.queue.add(keyOf(m.metadata.namespace, m.metadata.name));
  }

  #enqueueOwner(obj: KubeObject): void {
    const owner = obj.metadata?.labels?.[LABELS.mtproxy];
    const ns = obj.metadata?.namespace;
    if (owner && ns) this.queue.add(keyOf(ns, owner));
  }

  #enqueueForSecret(obj: KubeObject): void {
    this.#enqueueOwner(obj);
    const ns = obj.metadata?.namespace;
    const name = obj.metadata?.name;
    if (!ns || !name) return;
    // Users may label their own Secrets (mtkube.dev/mtproxy) to have changes picked up at once.
    for (const m of this.#mtproxies.list()) {
      if (m.metadata.namespace !== ns) continue;
      const spec = m.spec ?? {};
      const refs = [spec.secrets?.existingSecretName, spec.adTag?.secretKeyRef?.name, spec.usersSecretName];
      if (refs.includes(name)) {
        this.queue.add(keyOf(ns, m.metadata.name));
      }
    }
  }

  async #serviceMonitorsServed(): Promise<boolean> {
    const now = Date.now();
    if (this.#smServed && now - this.#smServed.at < 300_000) return this.#smServed.value;
    const value = await this.options.client.servesApi(SERVICE_MONITOR_API, 'ServiceMonitor');
    this.#smServed = { value, at: now };
    return value;
  }

  async #work(): Promise<void> {
    const { metrics, log } = this.options;
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      if (this.options.term?.aborted) {
        this.queue.done(key);
        return;
      }
      const [namespace, name] = key.split('/') as [string, string];
      this.options.observer?.started(key);
      const end = metrics.reconcileTime.startTimer({ controller: CONTROLLER_NAME });
      try {
        const result = await this.reconciler.reconcile(namespace, name);
        this.queue.forget(key);
        const delay = requeueDelay(result, this.options.maxRequeueMs ?? 3_600_000);
        if (delay !== undefined) {
          this.queue.addAfter(key, delay);
          metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result: 'requeue_after' });
        } else {
          metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result: 'success' });
        }
        log.debug('reconciled', { key, requeueAfterMs: result.requeueAfterMs });
      } catch (err) {
        // The term ended under it: not a failure of this MTProxy, and nothing more may be written.
        if (this.options.term?.aborted) return;
        metrics.reconcileTotal.inc({ controller: CONTROLLER_NAME, result: 'error' });
        metrics.reconcileErrors.inc({ controller: CONTROLLER_NAME });
        const delay = this.queue.addRateLimited(key);
        log.warn('reconcile failed', { key, error: errorMessage(err), retryInMs: Math.round(delay) });
        await this.reconciler.reportFailure(namespace, name, err);
      } finally {
        this.options.observer?.finished(key);
        end();
        this.queue.done(key);
      }
    }
  }
}
