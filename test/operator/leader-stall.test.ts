// Two operator replicas, each behind its own front to the real API server. The leader's Lease
// requests stall (its other requests still work, the worst case: it could go on writing). With the
// default timings, an invariant checker watching every reconcile of both replicas sees at most one
// replica reconciling at any instant, and the stalled leader hands over without ever overlapping.
import { performance } from 'node:perf_hooks';
import { expect } from 'chai';
import type { Operator } from '../../operator/src/operator.js';
import { eventually } from '../cluster/eventually.js';
import { freshTestBedPerTest, type TestBed } from './support/harness.js';
import { LeaseStallProxy } from './support/lease-stall-proxy.js';

/** Records every reconcile of every replica and checks they never overlap across replicas. */
class OneReconcilerChecker {
  readonly #active = new Map<string, number>();
  readonly violations: string[] = [];
  /** Which replica started each reconcile, in order. */
  readonly starts: { replica: string; at: number }[] = [];

  observer(replica: string) {
    return {
      started: (key: string) => {
        for (const [other, n] of this.#active) {
          if (other !== replica && n > 0) {
            this.violations.push(`${replica} started ${key} while ${other} was reconciling`);
          }
        }
        this.#active.set(replica, (this.#active.get(replica) ?? 0) + 1);
        this.starts.push({ replica, at: performance.now() });
      },
      finished: () => {
        this.#active.set(replica, (this.#active.get(replica) ?? 1) - 1);
      },
    };
  }

  /** Replicas in the order they reconciled, runs collapsed: ['a', 'b'] is one clean handover. */
  get handovers(): string[] {
    const runs: string[] = [];
    for (const s of this.starts) if (runs.at(-1) !== s.replica) runs.push(s.replica);
    return runs;
  }
}

describe('operator: one leader, even when its Lease requests hang', function () {
  this.timeout(120_000);
  let bed: TestBed;
  const fronts: LeaseStallProxy[] = [];
  afterEach(async () => {
    for (const f of fronts.splice(0)) await f.stop();
  });
  freshTestBedPerTest((b) => {
    bed = b;
  });

  it('with the default timings, a leader whose Lease calls stall stops before the other replica starts', async () => {
    const checker = new OneReconcilerChecker();
    const start = async (identity: string): Promise<{ op: Operator; front: LeaseStallProxy }> => {
      const front = await LeaseStallProxy.start(bed.cluster.kubeconfigPath);
      fronts.push(front);
      const op = await bed.startOperator({
        kubeConfig: front.kubeConfig(),
        leaderElect: true,
        identity,
        // The production defaults: lease 15 s, renew deadline 10 s, retry 2 s.
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 2_000,
        // Reconcile all the time, so that any overlap would be seen.
        resyncPeriodMs: 300,
        reconcileObserver: checker.observer(identity),
      });
      return { op, front };
    };
    await bed.applyProxy('tg', { workers: 1, publicAddress: { host: 'proxy.example.com' } });
    const a = await start('a');
    await eventually(async () => expect(a.op.isLeader).to.equal(true), { timeoutMs: 20_000 });
    const b = await start('b');
    await eventually(async () => expect(checker.starts.some((s) => s.replica === 'a')).to.equal(true));

    const stalledAt = performance.now();
    a.front.stallLeases = true;
    await eventually(async () => expect(b.op.isLeader).to.equal(true), {
      timeoutMs: 40_000,
      intervalMs: 100,
    });
    await eventually(async () => expect(checker.starts.some((s) => s.replica === 'b')).to.equal(true));
    const bFirst = checker.starts.find((s) => s.replica === 'b')!.at;
    expect(a.op.isLeader, 'a stepped down').to.equal(false);
    // b waited out a's Lease: at least the lease duration after a's last successful renewal.
    expect(bFirst - stalledAt).to.be.above(15_000 - 2_000);

    // a's stalled calls were given up by their own deadline, well inside the renew deadline.
    const given = a.front.stalled.filter((r) => r.heldMs !== undefined);
    expect(given.length).to.be.greaterThan(0);
    for (const r of given) expect(r.heldMs!).to.be.below(10_000);

    // a's Lease calls work again: it stays a standby, and b keeps reconciling alone.
    a.front.stallLeases = false;
    await new Promise((r) => setTimeout(r, 5_000));
    expect(a.op.isLeader).to.equal(false);
    expect(b.op.isLeader).to.equal(true);
    expect(checker.violations).to.deep.equal([]);
    expect(checker.handovers).to.deep.equal(['a', 'b']);
  });
});
