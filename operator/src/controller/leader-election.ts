// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: the leader renews the
// Lease every retry period; a candidate takes it over only after it has seen the same record, not
// renewed, for a whole lease duration (measured on its own clock, so clock skew between replicas
// does not matter); a leader that cannot renew within the renew deadline steps down before
// anyone else may take over. Release on shutdown hands over at once.
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
  get(): Promise<Lease | undefined>;
  /** Rejects with a conflict error when the Lease exists. */
  create(lease: Lease): Promise<Lease>;
  /** Rejects with a conflict error when resourceVersion is not the current one. */
  update(lease: Lease): Promise<Lease>;
}

export class KubeLeaseStore implements LeaseStore {
  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
    readonly name: string,
  ) {}

  async get(): Promise<Lease | undefined> {
    try {
      return await this.client.get<Lease & Record<string, unknown>>(this.#ref());
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  create(lease: Lease): Promise<Lease> {
    return this.client.create(lease as Lease & Record<string, unknown>);
  }

  update(lease: Lease): Promise<Lease> {
    return this.client.replace(lease as Lease & Record<string, unknown>);
  }

  #ref() {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      namespace: this.namespace,
      name: this.name,
    };
  }
}

/** Lease times are MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface LeaderElectorOptions {
  readonly store: LeaseStore;
  readonly identity: string;
  readonly clock: Clock;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  readonly onStartedLeading: () => void | Promise<void>;
  readonly onStoppedLeading: () => void | Promise<void>;
  readonly onError?: (err: unknown) => void;
}

export class LeaderElector {
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  #leader = false;
  #lastRenew = 0;
  #observed: { key: string; at: number } | undefined;
  #current: Lease | undefined;
  #running: Promise<void> | undefined;
  #abort = new AbortController();

  constructor(private readonly options: LeaderElectorOptions) {
    this.identity = options.identity;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseDurationMs) {
      throw new RangeError('the renew deadline must be shorter than the lease duration');
    }
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  /** One attempt to acquire (candidate) or renew (leader); returns whether we lead afterwards. */
  async step(): Promise<boolean> {
    const now = this.options.clock.now();
    let ok = false;
    try {
      ok = await this.#tryAcquireOrRenew(now);
    } catch (err) {
      this.options.onError?.(err);
    }
    if (ok) {
      this.#lastRenew = now;
      if (!this.#leader) {
        this.#leader = true;
        await this.options.onStartedLeading();
      }
    } else if (this.#leader && now - this.#lastRenew >= this.renewDeadlineMs) {
      this.#leader = false;
      await this.options.onStoppedLeading();
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

  /** Stops campaigning; with release, a held Lease is handed back so another replica leads at once. */
  async stop({ release = true } = {}): Promise<void> {
    this.#abort.abort();
    await this.#running;
    this.#running = undefined;
    if (!this.#leader) return;
    this.#leader = false;
    if (release) {
      try {
        await this.#release();
      } catch (err) {
        this.options.onError?.(err);
      }
    }
    await this.options.onStoppedLeading();
  }

  async #tryAcquireOrRenew(now: number): Promise<boolean> {
    const durationSeconds = Math.ceil(this.leaseDurationMs / 1000);
    const lease = await this.options.store.get();
    if (!lease) {
      try {
        this.#current = await this.options.store.create({
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.options.store.name, namespace: this.options.store.namespace },
          spec: {
            holderIdentity: this.identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: 0,
          },
        });
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
        acquireTime: mine && spec.acquireTime ? spec.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    try {
      this.#current = await this.options.store.update(next);
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
    this.#observed = { key: JSON.stringify(this.#current.spec), at: now };
    return true;
  }

  async #release(): Promise<void> {
    const lease = await this.options.store.get();
    if (!lease || lease.spec?.holderIdentity !== this.identity) return;
    const now = microTime(this.options.clock.now());
    await this.options.store.update({
      ...lease,
      spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now },
    });
  }
}
