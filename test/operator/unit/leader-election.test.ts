import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { KubeApiError } from '../../../operator/src/controller/kube-client.js';
import {
  LeaderElector,
  type Lease,
  type LeaseStore,
  microTime,
} from '../../../operator/src/controller/leader-election.js';
import { FakeClock } from '../support/fake-clock.js';

/** One Lease in memory with resourceVersion checks, like the API server's. */
class MemoryLeaseStore implements LeaseStore {
  readonly namespace = 'ops';
  readonly name = 'mtkube-operator';
  lease: Lease | undefined;
  version = 0;
  failing = false;

  /** While set, every call hangs until its deadline (a stalled API server). */
  hanging = false;
  readonly abortedAfterMs: number[] = [];

  async get(signal?: AbortSignal): Promise<Lease | undefined> {
    await this.#hang(signal);
    this.#check();
    return this.lease ? structuredClone(this.lease) : undefined;
  }
  async create(lease: Lease, signal?: AbortSignal): Promise<Lease> {
    await this.#hang(signal);
    this.#check();
    if (this.lease) throw new KubeApiError('POST', '/leases', 409, 'AlreadyExists', 'exists');
    return this.#store(lease);
  }
  async update(lease: Lease, signal?: AbortSignal): Promise<Lease> {
    await this.#hang(signal);
    this.#check();
    if (lease.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) {
      throw new KubeApiError('PUT', '/leases', 409, 'Conflict', 'stale');
    }
    return this.#store(lease);
  }
  #store(lease: Lease): Lease {
    this.lease = {
      ...structuredClone(lease),
      metadata: { ...lease.metadata, resourceVersion: String(++this.version) },
    };
    return structuredClone(this.lease);
  }
  async #hang(signal: AbortSignal | undefined): Promise<void> {
    if (!this.hanging) return;
    const start = performance.now();
    await new Promise<never>((_, reject) => {
      if (!signal) return; // without a deadline: forever
      signal.addEventListener('abort', () => {
        this.abortedAfterMs.push(performance.now() - start);
        reject(signal.reason);
      });
    });
  }
  #check(): void {
    if (this.failing) throw new Error('API server unreachable');
  }
}

function candidate(store: LeaseStore, identity: string, clock: FakeClock) {
  const log: string[] = [];
  const elector = new LeaderElector({
    store,
    identity,
    clock,
    monotonic: () => clock.now(),
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    onStartedLeading: () => {
      log.push('started');
    },
    onStoppedLeading: () => {
      log.push('stopped');
    },
  });
  return { elector, log };
}

describe('leader election', () => {
  it('the first candidate creates the Lease and leads; the second stands by', async () => {
    const store = new MemoryLeaseStore();
    const clock = new FakeClock('2026-01-01T00:00:00Z');
    const a = candidate(store, 'a', clock);
    const b = candidate(store, 'b', clock);
    expect(await a.elector.step()).to.equal(true);
    expect(await b.elector.step()).to.equal(false);
    expect(store.lease?.spec).to.include({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      leaseTransitions: 0,
    });
    expect(store.lease?.spec?.renewTime).to.equal('2026-01-01T00:00:00.000000Z');
    expect(a.log).to.deep.equal(['started']);
    expect(b.log).to.deep.equal([]);
  });

  it('a leader that keeps renewing keeps the Lease', async () => {
    const store = new MemoryLeaseStore();
    const clock = new FakeClock('2026-01-01T00:00:00Z');
    const a = candidate(store, 'a', clock);
    const b = candidate(store, 'b', clock);
    await a.elector.step();
    for (let i = 0; i < 30; i++) {
      clock.advance(2_000);
      expect(await a.elector.step()).to.equal(true);
      expect(await b.elector.step()).to.equal(false);
    }
    expect(store.lease?.spec?.renewTime).to.equal(microTime(clock.now()));
  });

  it('takes over only after the Lease went unrenewed for a whole duration', async () => {
    const store = new MemoryLeaseStore();
    const clock = new FakeClock('2026-01-01T00:00:00Z');
    const a = candidate(store, 'a', clock);
    const b = candidate(store, 'b', clock);
    await a.elector.step();
    await b.elector.step();
    // a dies without releasing.
    clock.advance(14_000);
    expect(await b.elector.step(), 'still within the lease duration').to.equal(false);
    clock.advance(2_000);
    expect(await b.elector.step()).to.equal(true);
    expect(store.lease?.spec).to.include({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  it('a leader that cannot renew steps down before anyone may take over', async () => {
    const store = new MemoryLeaseStore();
    const clock = new FakeClock('2026-01-01T00:00:00Z');
    const a = candidate(store, 'a', clock);
    await a.elector.step();
    store.failing = true;
    clock.advance(8_000);
    expect(await a.elector.step(), 'within the renew deadline').to.equal(true);
    clock.advance(2_000);
    expect(await a.elector.step()).to.equal(false);
    expect(a.log).to.deep.equal(['started', 'stopped']);
    // 10 s after the last renewal: another candidate would still have to wait 5 s more.
    expect(a.elector.renewDeadlineMs).to.be.below(a.elector.leaseDurationMs);
  });

  it('hands the Lease over at once on release', async () => {
    const store = new MemoryLeaseStore();
    const clock = new FakeClock('2026-01-01T00:00:00Z');
    const a = candidate(store, 'a', clock);
    const b = candidate(store, 'b', clock);
    await a.elector.step();
    await b.elector.step();
    await a.elector.stop({ release: true });
    expect(a.log).to.deep.equal(['started', 'stopped']);
    expect(store.lease?.spec?.holderIdentity).to.equal('');
    clock.advance(100);
    expect(await b.elector.step()).to.equal(true);
  });

  it('loses a race for the same Lease version without harm', async () => {
    const store = new MemoryLeaseStore();
    const clock = new FakeClock('2026-01-01T00:00:00Z');
    const a = candidate(store, 'a', clock);
    const b = candidate(store, 'b', clock);
    const results = await Promise.all([a.elector.step(), b.elector.step()]);
    expect(results.filter(Boolean)).to.have.length(1);
  });

  describe('against a Lease API that hangs (real timers)', () => {
    const timing = { leaseDurationMs: 1_500, renewDeadlineMs: 1_000, retryPeriodMs: 200 };

    function live(store: LeaseStore, identity: string) {
      const events: { what: string; at: number }[] = [];
      const elector = new LeaderElector({
        store,
        identity,
        clock: { now: () => Date.now() },
        ...timing,
        onStartedLeading: () => {
          events.push({ what: 'started', at: performance.now() });
        },
        onStoppedLeading: () => {
          events.push({ what: 'stopped', at: performance.now() });
        },
      });
      return { elector, events };
    }

    it('every call has a deadline shorter than the renew deadline', async () => {
      const store = new MemoryLeaseStore();
      const a = live(store, 'a');
      expect(a.elector.attemptTimeoutMs).to.be.below(timing.renewDeadlineMs);
      store.hanging = true;
      const started = performance.now();
      expect(await a.elector.step()).to.equal(false);
      expect(performance.now() - started).to.be.below(timing.renewDeadlineMs);
      expect(store.abortedAfterMs).to.have.length(1);
      expect(store.abortedAfterMs[0]).to.be.within(a.elector.attemptTimeoutMs - 50, timing.renewDeadlineMs);
    });

    it('a leader whose renewal hangs steps down on its own timer, by the renew deadline', async () => {
      const store = new MemoryLeaseStore();
      const a = live(store, 'a');
      const renewSent = performance.now();
      expect(await a.elector.step()).to.equal(true);
      store.hanging = true;
      a.elector.start();
      try {
        for (let i = 0; i < 40 && a.elector.isLeader; i++) await sleep(50);
        const stopped = a.events.find((e) => e.what === 'stopped');
        expect(stopped, 'stepped down').to.not.equal(undefined);
        // Counted from when the last good renewal was sent; timers may run a little late here.
        expect(stopped!.at - renewSent).to.be.within(
          timing.renewDeadlineMs - 5,
          timing.renewDeadlineMs + 300,
        );
        expect(stopped!.at - renewSent).to.be.below(timing.leaseDurationMs);
      } finally {
        await a.elector.stop({ release: false });
      }
    });

    it('a new leader waits out the old Lease: the two never lead at the same time', async () => {
      const store = new MemoryLeaseStore();
      // Each replica has its own connection to the one Lease; a's starts hanging.
      const aView = new StoreView(store);
      const a = live(aView, 'a');
      const b = live(new StoreView(store), 'b');
      await a.elector.step();
      a.elector.start();
      b.elector.start();
      try {
        await sleep(400);
        aView.hanging = true;
        for (let i = 0; i < 80 && !b.elector.isLeader; i++) await sleep(50);
        expect(b.elector.isLeader).to.equal(true);
        const aStopped = a.events.find((e) => e.what === 'stopped')!.at;
        const bStarted = b.events.find((e) => e.what === 'started')!.at;
        expect(bStarted - aStopped, 'b starts only after a stopped').to.be.above(0);
      } finally {
        await a.elector.stop({ release: false });
        await b.elector.stop({ release: false });
      }
    });
  });
});

/** One replica's way to the shared Lease, which can hang on its own. */
class StoreView implements LeaseStore {
  hanging = false;
  constructor(private readonly inner: MemoryLeaseStore) {}
  get namespace() {
    return this.inner.namespace;
  }
  get name() {
    return this.inner.name;
  }
  get(signal?: AbortSignal) {
    return this.hanging ? hangForever(signal) : this.inner.get(signal);
  }
  create(lease: Lease, signal?: AbortSignal) {
    return this.hanging ? hangForever(signal) : this.inner.create(lease, signal);
  }
  update(lease: Lease, signal?: AbortSignal) {
    return this.hanging ? hangForever(signal) : this.inner.update(lease, signal);
  }
}

function hangForever(signal: AbortSignal | undefined): Promise<never> {
  return new Promise<never>((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason)));
}
