// Leader election on a coordination.k8s.io/v1 Lease with client-go's guarantees:
// - every attempt to acquire or renew has its own deadline, shorter than the renew deadline, so a
//   hanging API call cannot keep a leader believing it leads;
// - a leader steps down on a monotonic timer armed at each successful renewal: renewDeadline after
//   the renewal was *sent* (the earliest moment anyone else can have seen it), whatever the API
//   server, the wall clock or a pending call are doing;
// - a candidate takes the Lease over only after it has seen the same record, not renewed, for a
//   whole lease duration measured on its own monotonic clock (clock skew between replicas and wall
//   clock jumps do not matter).
// Since renewDeadline < leaseDuration, the old leader has stopped before a new one may start.
// Release on shutdown (after the caller has stopped its work) hands over at once.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Clock } from '../schedule/clock.js';
import { isConflict, isNotFound, type KubeClient } from './kube-client.js';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** Storage of one Lease with optimistic concurrency (create fails if present, update if stale). */
export interface LeaseStore {
  readonly namespace: string;
  readonly name: string;
  get(signal?: AbortSignal): Promise<Lease | undefined>;
  /** Rejects with a conflict error when the Lease exists. */
  create(lease: Lease, signal?: AbortSignal): Promise<Lease>;
  /** Rejects with a conflict error when resourceVersion is not the current one. */
  update(lease: Lease, signal?: AbortSignal): Promise<Lease>;
}

export class KubeLeaseStore implements LeaseStore {
  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
    readonly name: string,
  ) {}

  async get(signal?: AbortSignal): Promise<Lease | undefined> {
    try {
      const path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases/${encodeURIComponent(this.name)}`;
      return await this.client.request<Lease>('GET', path, signal ? { signal } : {});
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  create(lease: Lease, signal?: AbortSignal): Promise<Lease> {
    const path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases`;
    return this.client.request<Lease>('POST', path, { body: lease, ...(signal ? { signal } : {}) });
  }

  update(lease: Lease, signal?: AbortSignal): Promise<Lease> {
    const path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases/${encodeURIComponent(this.name)}`;
    return this.client.request<Lease>('PUT', path, { body: lease, ...(signal ? { signal } : {}) });
  }
}

/** Lease times are MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface LeaderElectorOptions {
  readonly store: LeaseStore;
  readonly identity: string;
  /** Wall clock: only for the times written into the Lease, which humans read. */
  readonly clock: Clock;
  /** Monotonic milliseconds for every decision (default performance.now). */
  readonly monotonic?: () => number;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  readonly onStartedLeading: () => void | Promise<void>;
  /** Must stop all work before it resolves: the Lease is released (on stop) only afterwards. */
  readonly onStoppedLeading: () => void | Promise<void>;
  readonly onError?: (err: unknown) => void;
}

export class LeaderElector {
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  /** Deadline of one acquire/renew attempt (all its API calls together). */
  readonly attemptTimeoutMs: number;
  readonly #now: () => number;
  #leader = false;
  /** Monotonic time the last successful renewal was sent. */
  #lastRenew = 0;
  #stepDownTimer: NodeJS.Timeout | undefined;
  #observed: { key: string; at: number } | undefined;
  #current: Lease | undefined;
  #running: Promise<void> | undefined;
  #stopping: Promise<void> = Promise.resolve();
  #abort = new AbortController();

  constructor(private readonly options: LeaderElectorOptions) {
    this.identity = options.identity;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.#now = options.monotonic ?? (() => performance.now());
    if (this.renewDeadlineMs >= this.leaseDurationMs) {
      throw new RangeError('the renew deadline must be shorter than the lease duration');
    }
    if (this.retryPeriodMs >= this.renewDeadlineMs) {
      throw new RangeError('the retry period must be shorter than the renew deadline');
    }
    // At least two attempts fit in a renew deadline.
    this.attemptTimeoutMs = Math.max(this.retryPeriodMs, Math.floor(this.renewDeadlineMs / 2));
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  /** One attempt to acquire (candidate) or renew (leader); returns whether we lead afterwards. */
  async step(): Promise<boolean> {
    if (this.#pastRenewDeadline()) await this.#stepDown();
    const sentAt = this.#now();
    // A leader's attempt may not outlive its renew deadline; a candidate's gets the usual budget.
    const budget = this.#leader
      ? Math.min(this.attemptTimeoutMs, this.#lastRenew + this.renewDeadlineMs - sentAt)
      : this.attemptTimeoutMs;
    let ok = false;
    if (budget > 0) {
      try {
        ok = await this.#tryAcquireOrRenew(sentAt, AbortSignal.timeout(budget));
      } catch (err) {
        this.options.onError?.(err);
      }
    }
    // The step-down timer may have fired while the call was pending; the answer came too late.
    const late = ok && this.#pastRenewDeadline();
    if (ok && !late) {
      this.#lastRenew = sentAt;
      this.#armStepDown();
      if (!this.#leader) {
        this.#leader = true;
        await this.options.onStartedLeading();
      }
    } else if (this.#pastRenewDeadline()) {
      await this.#stepDown();
    }
    return this.#leader;
  }

  /** Runs step() every retry period (jittered) until stop(). */
  start(): void {
    if (this.#running) return;
    const signal = this.#abort.signal;
    this.#running = (async () => {
      while (!signal.aborted) {
        await this.step();
        const wait = this.retryPeriodMs * (this.#leader ? 1 : 1 + Math.random() * 0.2);
        await sleep(wait, undefined, { signal }).catch(() => {});
      }
    })();
  }

  /**
   * Stops campaigning. A leader first stops leading (onStoppedLeading resolves when its work has
   * stopped); only then, with release, is the Lease handed back so another replica leads at once.
   */
  async stop({ release = true } = {}): Promise<void> {
    this.#abort.abort();
    await this.#running;
    this.#running = undefined;
    const wasLeader = this.#leader;
    if (wasLeader) await this.#stepDown();
    await this.#stopping;
    if (wasLeader && release) {
      try {
        await this.#release(AbortSignal.timeout(this.attemptTimeoutMs));
      } catch (err) {
        this.options.onError?.(err);
      }
    }
  }

  /** We lead, and renewDeadline has passed since the last successful renewal was sent. */
  #pastRenewDeadline(): boolean {
    return this.#leader && this.#now() - this.#lastRenew >= this.renewDeadlineMs;
  }

  /** renewDeadline after the renewal was sent, on the monotonic clock of timers. */
  #armStepDown(): void {
    clearTimeout(this.#stepDownTimer);
    const delay = Math.max(0, this.#lastRenew + this.renewDeadlineMs - this.#now());
    this.#stepDownTimer = setTimeout(() => {
      if (this.#pastRenewDeadline()) void this.#stepDown();
    }, delay);
    this.#stepDownTimer.unref();
  }

  #stepDown(): Promise<void> {
    if (!this.#leader) return this.#stopping;
    this.#leader = false;
    clearTimeout(this.#stepDownTimer);
    this.#stopping = Promise.resolve(this.options.onStoppedLeading());
    return this.#stopping;
  }

  async #tryAcquireOrRenew(now: number, signal: AbortSignal): Promise<boolean> {
    const wall = this.options.clock.now();
    const durationSeconds = Math.ceil(this.leaseDurationMs / 1000);
    const lease = await this.options.store.get(signal);
    if (!lease) {
      try {
        this.#current = await this.options.store.create(
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: { name: this.options.store.name, namespace: this.options.store.namespace },
            spec: {
              holderIdentity: this.identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: microTime(wall),
              renewTime: microTime(wall),
              leaseTransitions: 0,
            },
          },
          signal,
        );
        this.#observed = { key: JSON.stringify(this.#current.spec), at: now };
        return true;
      } catch (err) {
        if (isConflict(err)) return false;
        throw err;
      }
    }
    const spec = lease.spec ?? {};
    const key = JSON.stringify(spec);
    if (this.#observed?.key !== key) this.#observed = { key, at: now };
    const holder = spec.holderIdentity ?? '';
    const heldMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder !== '' && holder !== this.identity && this.#observed.at + heldMs > now) return false;

    const mine = holder === this.identity;
    const next: Lease = {
      ...lease,
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: durationSeconds,
        acquireTime: mine && spec.acquireTime ? spec.acquireTime : microTime(wall),
        renewTime: microTime(wall),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    try {
      this.#current = await this.options.store.update(next, signal);
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
    this.#observed = { key: JSON.stringify(this.#current.spec), at: now };
    return true;
  }

  async #release(signal: AbortSignal): Promise<void> {
    const lease = await this.options.store.get(signal);
    if (!lease || lease.spec?.holderIdentity !== this.identity) return;
    const now = microTime(this.options.clock.now());
    await this.options.store.update(
      {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: now,
          acquireTime: now,
        },
      },
      signal,
    );
  }
}
