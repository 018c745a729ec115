// The operator process put together: HTTP endpoints, preflight checks (retried until the CRD and
// RBAC are in place), leader election, and a fresh controller each time this replica leads.
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { defaultPolicy, type ProxyPolicy } from './api/policy.js';
import { Controller, type ReconcileObserver } from './controller/controller.js';
import { EventRecorder } from './controller/events.js';
import { KubeClient } from './controller/kube-client.js';
import { KubeLeaseStore, LeaderElector } from './controller/leader-election.js';
import { OperatorMetrics } from './controller/metrics.js';
import { errorMessage } from './controller/redact.js';
import { type OperatorHttpServer, startHttpServer } from './http-server.js';
import { createLogger, type Logger } from './logging.js';
import { preflight } from './preflight.js';
import { FIELD_MANAGER } from './render/meta.js';
import type { RandomBytes } from './render/secrets.js';
import { type Clock, systemClock } from './schedule/clock.js';

export interface OperatorOptions {
  readonly kubeConfig: KubeConfig;
  /** Empty: all namespaces. */
  readonly namespaces: readonly string[];
  readonly leaderElect: boolean;
  readonly leaseNamespace: string;
  readonly leaseName: string;
  /** 0 picks a free port (see Operator.metricsPort). */
  readonly metricsPort: number;
  readonly metricsBind?: string;
  readonly defaultProxyImage: string;
  /** What MTProxy authors may ask for; default: defaultPolicy(defaultProxyImage). */
  readonly policy?: ProxyPolicy;
  readonly identity?: string;
  readonly clock?: Clock;
  readonly random?: RandomBytes;
  readonly log?: Logger;
  readonly resyncPeriodMs?: number;
  readonly stallTimeoutMs?: number;
  readonly concurrency?: number;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  readonly preflightRetryMs?: number;
  /** Include Node process metrics in /metrics (off in tests running several operators). */
  readonly processMetrics?: boolean;
  /** Told when a reconcile starts and ends (tests check that one replica reconciles at a time). */
  readonly reconcileObserver?: ReconcileObserver;
}

export class Operator {
  readonly identity: string;
  readonly metrics: OperatorMetrics;
  readonly client: KubeClient;
  readonly log: Logger;
  #http: OperatorHttpServer | undefined;
  #elector: LeaderElector | undefined;
  #controller: Controller | undefined;
  #preflightOk = false;
  #preflightProblems: readonly string[] = ['not checked yet'];
  #stopped = false;
  #startup: Promise<void> | undefined;
  #leading: Promise<void> = Promise.resolve();
  /** Aborted when this replica stops leading: cuts off every request of the controller's term. */
  #term: AbortController | undefined;
  readonly #abort = new AbortController();

  constructor(private readonly options: OperatorOptions) {
    this.identity = options.identity ?? `${hostname()}_${randomUUID().slice(0, 8)}`;
    this.log = (options.log ?? createLogger('info')).child({ identity: this.identity });
    this.metrics = new OperatorMetrics({ processMetrics: options.processMetrics ?? true });
    this.client = new KubeClient(options.kubeConfig, FIELD_MANAGER);
  }

  get metricsPort(): number {
    return this.#http?.port ?? 0;
  }

  get isLeader(): boolean {
    return this.options.leaderElect ? (this.#elector?.isLeader ?? false) : this.#controller !== undefined;
  }

  /** The running controller, while this replica leads. */
  get controller(): Controller | undefined {
    return this.#controller;
  }

  /** Serves the endpoints, then checks and campaigns in the background. */
  async start(): Promise<void> {
    this.#http = await startHttpServer(
      this.metrics.registry,
      {
        healthy: () => ({ ok: !this.#stopped, detail: this.#stopped ? 'stopping' : 'running' }),
        ready: () => this.#ready(),
      },
      this.options.metricsPort,
      this.options.metricsBind ?? '0.0.0.0',
    );
    this.log.info('operator starting', {
      metricsPort: this.#http.port,
      namespaces: this.options.namespaces.length > 0 ? this.options.namespaces : 'all',
      leaderElect: this.options.leaderElect,
    });
    this.#startup = this.#run();
  }

  /** Resolves once preflight passed and (with leader election) the first campaign step ran. */
  async started(): Promise<void> {
    await this.#startup;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abort.abort();
    await this.#startup;
    if (this.#elector) await this.#elector.stop({ release: true });
    else await this.#stopController();
    await this.#leading;
    await this.#http?.close();
    this.client.close();
    this.log.info('operator stopped');
  }

  /** Stops as if the process died: no Lease release (for failover tests). */
  async crash(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.#startup;
    await this.#elector?.stop({ release: false });
    await this.#stopController();
    await this.#http?.close();
    this.client.close();
  }

  #ready(): { ok: boolean; detail: string } {
    if (this.#stopped) return { ok: false, detail: 'stopping' };
    if (!this.#preflightOk) return { ok: false, detail: this.#preflightProblems.join('; ') };
    if (this.#controller && !this.#controller.synced) return { ok: false, detail: 'caches not synced yet' };
    return { ok: true, detail: this.isLeader ? 'leading' : 'standing by' };
  }

  async #run(): Promise<void> {
    const retry = this.options.preflightRetryMs ?? 10_000;
    const leaseNs = this.options.leaderElect ? this.options.leaseNamespace : undefined;
    while (!this.#stopped) {
      try {
        const result = await preflight(this.client, this.options.namespaces, leaseNs);
        this.#preflightOk = result.ok;
        this.#preflightProblems = result.problems;
        if (result.ok) break;
        for (const p of result.problems) this.log.error(`cannot run: ${p}`, { retryInMs: retry });
      } catch (err) {
        this.#preflightProblems = [`the API server cannot be reached: ${errorMessage(err)}`];
        this.log.error('cannot reach the API server', { error: errorMessage(err), retryInMs: retry });
      }
      await sleep(retry, undefined, { signal: this.#abort.signal }).catch(() => {});
    }
    if (this.#stopped) return;
    if (!this.options.leaderElect) {
      await this.#startController();
      return;
    }
    this.#elector = new LeaderElector({
      store: new KubeLeaseStore(this.client, this.options.leaseNamespace, this.options.leaseName),
      identity: this.identity,
      clock: systemClock,
      leaseDurationMs: this.options.leaseDurationMs,
      renewDeadlineMs: this.options.renewDeadlineMs,
      retryPeriodMs: this.options.retryPeriodMs,
      onStartedLeading: () => {
        this.log.info('became the leader', {
          lease: `${this.options.leaseNamespace}/${this.options.leaseName}`,
        });
        this.metrics.leader.set({ name: 'mtkube-operator' }, 1);
        const term = new AbortController();
        this.#term = term;
        this.#leading = this.#leading.then(() => this.#startController(term.signal));
      },
      onStoppedLeading: () => {
        // First cut off everything the term started, at once: nothing may still write after the
        // renew deadline, however slow the controller is to wind down.
        this.#term?.abort(new Error('stopped leading'));
        this.#term = undefined;
        this.log.info('stopped leading');
        this.metrics.leader.set({ name: 'mtkube-operator' }, 0);
        this.#leading = this.#leading.then(() => this.#stopController());
        return this.#leading;
      },
      onError: (err) => this.log.warn('lease update failed', { error: errorMessage(err) }),
    });
    await this.#elector.step();
    if (!this.#stopped) this.#elector.start();
  }

  async #startController(term?: AbortSignal): Promise<void> {
    if (this.#stopped || this.#controller || term?.aborted) return;
    const clock = this.options.clock ?? systemClock;
    const client = term ? this.client.scoped(term) : this.client;
    const controller = new Controller({
      kubeConfig: this.options.kubeConfig,
      client,
      ...(term ? { term } : {}),
      ...(this.options.reconcileObserver ? { observer: this.options.reconcileObserver } : {}),
      namespaces: this.options.namespaces,
      clock,
      random: this.options.random ?? randomBytes,
      events: new EventRecorder(client, {
        component: 'mtkube-operator',
        instance: this.identity,
        clock,
        onError: (err) => this.log.debug('event not recorded', { error: errorMessage(err) }),
      }),
      metrics: this.metrics,
      log: this.log,
      defaultImage: this.options.defaultProxyImage,
      policy: this.options.policy ?? defaultPolicy(this.options.defaultProxyImage),
      concurrency: this.options.concurrency,
      resyncPeriodMs: this.options.resyncPeriodMs,
      stallTimeoutMs: this.options.stallTimeoutMs,
    });
    this.#controller = controller;
    if (!this.options.leaderElect) this.metrics.leader.set({ name: 'mtkube-operator' }, 1);
    try {
      await controller.start();
    } catch (err) {
      this.log.error('controller failed to start', { error: errorMessage(err) });
    }
  }

  async #stopController(): Promise<void> {
    const controller = this.#controller;
    this.#controller = undefined;
    await controller?.stop();
  }
}
