// The daily rolling restart against the real API server, with the operator's clock in the test's
// hand: it fires once per window, shows as a new ReplicaSet, and an operator restart neither
// skips nor repeats it.
import { expect } from 'chai';
import type { Operator } from '../../operator/src/operator.js';
import { eventually } from '../cluster/eventually.js';
import { FakeClock } from './support/fake-clock.js';
import { type DeploymentJson, freshTestBedPerTest, type TestBed } from './support/harness.js';

describe('operator: the daily restart', function () {
  this.timeout(120_000);
  let bed: TestBed;
  freshTestBedPerTest((b) => {
    bed = b;
  });

  const replicaSets = async () => (await bed.list('replicasets', 'app.kubernetes.io/instance=tg')).length;

  /** Lets the operator look again now (as its periodic resync would) and waits for it to settle. */
  async function tick(op: Operator): Promise<void> {
    await eventually(async () => expect(op.controller?.synced, 'controller running').to.equal(true));
    op.controller!.resync();
    await eventually(async () => {
      expect(op.controller!.queue.length).to.equal(0);
    });
    await new Promise((r) => setTimeout(r, 300));
  }

  it('restarts once per window at the scheduled local time, and survives an operator restart', async () => {
    // 02:00 UTC is 03:00 in Berlin; the restart is due at 04:00 Berlin = 03:00 UTC.
    const clock = new FakeClock('2026-01-15T02:00:00Z');
    let op = await bed.startOperator({ clock, resyncPeriodMs: 60_000 });
    await bed.applyProxy('tg', {
      replicas: 2,
      restart: { enabled: true, schedule: '04:00', timeZone: 'Europe/Berlin' },
    });
    let mtp = await bed.waitForCondition('tg', 'Ready', 'True');
    expect(mtp.status?.nextRestartTime).to.equal('2026-01-15T03:00:00Z');
    expect(mtp.status?.lastRestartTime).to.equal(undefined);
    expect(await replicaSets()).to.equal(1);

    clock.set('2026-01-15T02:59:00Z');
    await tick(op);
    expect(await replicaSets(), 'not yet').to.equal(1);

    clock.set('2026-01-15T03:00:10Z');
    await tick(op);
    await eventually(async () => {
      const dep = await bed.get<DeploymentJson>('deployment', 'tg');
      expect(dep.spec.template.metadata.annotations?.['mtkube.dev/restartedAt']).to.equal(
        '2026-01-15T03:00:10Z',
      );
      expect(await replicaSets()).to.equal(2);
    });
    mtp = await bed.waitForCondition('tg', 'Ready', 'True');
    expect(mtp.status?.lastRestartTime).to.equal('2026-01-15T03:00:10Z');
    expect(mtp.status?.nextRestartTime).to.equal('2026-01-16T03:00:00Z');
    const events = await bed.kubectlOk([
      'get',
      'events',
      '--field-selector',
      'reason=DailyRestart',
      '-o',
      'name',
    ]);
    expect(events.trim().split('\n')).to.have.length(1);

    // Later in the same window, and after an operator restart: nothing more.
    for (const t of ['2026-01-15T03:05:00Z', '2026-01-15T09:00:00Z']) {
      clock.set(t);
      await tick(op);
    }
    await bed.stopOperator(op);
    op = await bed.startOperator({ clock, resyncPeriodMs: 60_000 });
    await bed.waitForCondition('tg', 'Ready', 'True');
    await tick(op);
    expect(await replicaSets()).to.equal(2);
    expect((await bed.proxy('tg')).status?.lastRestartTime).to.equal('2026-01-15T03:00:10Z');

    // The next day's window, reached while the operator was down, is caught up once.
    await bed.stopOperator(op);
    clock.set('2026-01-16T05:30:00Z');
    op = await bed.startOperator({ clock, resyncPeriodMs: 60_000 });
    await eventually(async () => expect(await replicaSets()).to.equal(3));
    mtp = await bed.waitForCondition('tg', 'Ready', 'True');
    expect(mtp.status?.lastRestartTime).to.equal('2026-01-16T05:30:00Z');
    expect(mtp.status?.nextRestartTime).to.equal('2026-01-17T03:00:00Z');
    await tick(op);
    expect(await replicaSets()).to.equal(3);
  });

  it('waits for a rollout in progress before restarting', async () => {
    const clock = new FakeClock('2026-01-15T02:00:00Z');
    const op = await bed.startOperator({ clock, resyncPeriodMs: 60_000 });
    await bed.applyProxy('tg', { restart: { enabled: true, schedule: '03:00', timeZone: 'UTC' } });
    await bed.waitForCondition('tg', 'Ready', 'True');
    // A pod that never becomes available keeps the rollout in progress.
    await bed.applyProxy('tg', {
      restart: { enabled: true, schedule: '03:00', timeZone: 'UTC' },
      podTemplate: { nodeSelector: { 'no-such-node': 'true' } },
    });
    await bed.waitForCondition('tg', 'Progressing', 'True');
    const before = await replicaSets();

    clock.set('2026-01-15T03:00:30Z');
    await tick(op);
    await eventually(async () => {
      const events = await bed.kubectlOk([
        'get',
        'events',
        '--field-selector',
        'reason=RestartPostponed',
        '-o',
        'name',
      ]);
      expect(events.trim()).to.not.equal('');
    });
    expect(await replicaSets()).to.equal(before);
    expect((await bed.proxy('tg')).status?.nextRestartTime, 'still due').to.equal('2026-01-15T03:00:00Z');

    // The rollout finishes (the bad selector is gone): the postponed restart happens once.
    await bed.applyProxy('tg', { restart: { enabled: true, schedule: '03:00', timeZone: 'UTC' } });
    await eventually(
      async () => {
        op.controller!.resync();
        const mtp = await bed.proxy('tg');
        expect(mtp.status?.lastRestartTime).to.equal('2026-01-15T03:00:30Z');
      },
      { timeoutMs: 45_000, intervalMs: 1000 },
    );
    expect((await bed.proxy('tg')).status?.nextRestartTime).to.equal('2026-01-16T03:00:00Z');
  });
});
