// The operator's own Prometheus metrics, named as controller-runtime names them so existing
// dashboards and alerts work unchanged.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { QueueObserver } from './work-queue.js';

export const CONTROLLER_NAME = 'mtproxy';

export type ReconcileResult = 'success' | 'error' | 'requeue_after';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal = new Counter({
    name: 'controller_runtime_reconcile_total',
    help: 'Reconciliations per controller and result.',
    labelNames: ['controller', 'result'] as const,
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: 'controller_runtime_reconcile_errors_total',
    help: 'Reconciliations that failed.',
    labelNames: ['controller'] as const,
    registers: [this.registry],
  });
  readonly reconcileTime = new Histogram({
    name: 'controller_runtime_reconcile_time_seconds',
    help: 'How long one reconciliation took.',
    labelNames: ['controller'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'workqueue_depth',
    help: 'Keys waiting in the work queue.',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  readonly queueAdds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Keys added to the work queue.',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  readonly queueRetries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Rate-limited retries of keys.',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'leader_election_master_status',
    help: '1 while this replica leads, 0 otherwise.',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  readonly managedProxies = new Gauge({
    name: 'mtkube_operator_managed_proxies',
    help: 'MTProxy resources in the watched namespaces.',
    registers: [this.registry],
  });
  readonly watchRestarts = new Counter({
    name: 'mtkube_operator_watch_restarts_total',
    help: 'Informers restarted after an error or a silent stall.',
    labelNames: ['resource', 'cause'] as const,
    registers: [this.registry],
  });

  constructor({ processMetrics = true } = {}) {
    if (processMetrics) collectDefaultMetrics({ register: this.registry });
    this.leader.set({ name: 'mtkube-operator' }, 0);
    this.queueDepth.set({ name: CONTROLLER_NAME }, 0);
  }

  queueObserver(): QueueObserver {
    return {
      added: () => this.queueAdds.inc({ name: CONTROLLER_NAME }),
      retried: () => this.queueRetries.inc({ name: CONTROLLER_NAME }),
      depth: (n) => this.queueDepth.set({ name: CONTROLLER_NAME }, n),
    };
  }
}
