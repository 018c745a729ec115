import { expect } from 'chai';
import { KubeApiError } from '../../../operator/src/controller/kube-client.js';
import {
  LeaderElector,
  type Lease,
  type LeaseStore,
  microTime,
} from '../../../operator/src/controller/leader-election.js';
import { FakeClock } from '../../../operator/src/schedule/clock.js';

/** One Lease in memory with resourceVersion checks, like the API server's. */
class MemoryLeaseStore implements LeaseStore {
  readonly namespace = 'ops';
  readonly name = 'mtkube-operator';
  lease: Lease | undefined;
  version = 0;
  failing = false;

  async get(): Promise<Lease | undefined> {
    this.#check();
    return this.lease ? structuredClone(this.lease) : undefined;
  }
  async create(lease: Lease): Promise<Lease> {
    this.#check();
    if (this.lease) throw new KubeApiError('POST', '/leases', 409, 'AlreadyExists', 'exists');
    return this.#store(lease);
  }
  async update(lease: Lease): Promise<Lease> {
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
});
