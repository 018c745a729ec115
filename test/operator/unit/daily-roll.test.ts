import { expect } from 'chai';
import { parseDailySchedule } from '../../../operator/src/schedule/daily.js';
import { decideRoll, type RollDecision, type RollInput } from '../../../operator/src/schedule/roll.js';
import { FakeClock } from '../support/fake-clock.js';

// A small simulation of what the reconciler does with a decision: the restart annotation lands on
// the Deployment, then status remembers the times.
class Simulation {
  status: RollInput['status'] = {};
  templateRestartedAt: string | undefined;
  restarts: string[] = [];
  rolloutInProgress = false;
  paused = false;
  readonly clock: FakeClock;
  constructor(
    start: string,
    public schedule = parseDailySchedule('04:00', 'Europe/Berlin', 0),
  ) {
    this.clock = new FakeClock(start);
  }

  reconcile({ crashBeforeStatus = false } = {}): RollDecision {
    const d = decideRoll({
      now: this.clock.now(),
      schedule: this.schedule,
      seed: 'uid-1',
      paused: this.paused,
      rolloutInProgress: this.rolloutInProgress,
      status: this.status,
      templateRestartedAt: this.templateRestartedAt,
    });
    if (d.restartedAt !== this.templateRestartedAt) {
      this.templateRestartedAt = d.restartedAt;
      this.restarts.push(d.restartedAt!);
    }
    if (!crashBeforeStatus) {
      this.status = {
        lastRestartTime: d.lastRestartTime,
        nextRestartTime: d.nextRestartTime,
        restartSchedule: d.restartSchedule,
      };
    }
    return d;
  }
}

describe('daily roll decision', () => {
  it('plans the first restart for the next window and does not restart at creation', () => {
    const sim = new Simulation('2026-01-15T02:00:00Z');
    const d = sim.reconcile();
    expect(d.action).to.equal('none');
    expect(d.nextRestartTime).to.equal('2026-01-15T03:00:00Z');
    expect(d.requeueAfterMs).to.equal(3600_000);
    expect(sim.restarts).to.deep.equal([]);
  });

  it('restarts once when the window comes, however often it reconciles', () => {
    const sim = new Simulation('2026-01-15T02:00:00Z');
    sim.reconcile();
    sim.clock.set('2026-01-15T03:00:05Z');
    for (let i = 0; i < 5; i++) {
      sim.reconcile();
      sim.clock.advance(60_000);
    }
    expect(sim.restarts).to.deep.equal(['2026-01-15T03:00:05Z']);
    expect(sim.status.nextRestartTime).to.equal('2026-01-16T03:00:00Z');

    sim.clock.set('2026-01-16T03:00:00Z');
    sim.reconcile();
    sim.reconcile();
    expect(sim.restarts).to.deep.equal(['2026-01-15T03:00:05Z', '2026-01-16T03:00:00Z']);
  });

  it('catches up a window missed while the operator was down, once', () => {
    const sim = new Simulation('2026-01-15T02:00:00Z');
    sim.reconcile();
    // The operator is down from 02:00 until 09:00; status still says 03:00.
    sim.clock.set('2026-01-15T09:00:00Z');
    sim.reconcile();
    sim.reconcile();
    expect(sim.restarts).to.deep.equal(['2026-01-15T09:00:00Z']);
    expect(sim.status.nextRestartTime).to.equal('2026-01-16T03:00:00Z');
  });

  it('does not repeat a restart when the operator died before writing status', () => {
    const sim = new Simulation('2026-01-15T02:00:00Z');
    sim.reconcile();
    sim.clock.set('2026-01-15T03:00:01Z');
    sim.reconcile({ crashBeforeStatus: true });
    expect(sim.status.nextRestartTime, 'status still shows the old plan').to.equal('2026-01-15T03:00:00Z');
    sim.clock.advance(30_000);
    const d = sim.reconcile();
    expect(d.action).to.equal('none');
    expect(sim.restarts).to.deep.equal(['2026-01-15T03:00:01Z']);
    expect(sim.status.lastRestartTime).to.equal('2026-01-15T03:00:01Z');
    expect(sim.status.nextRestartTime).to.equal('2026-01-16T03:00:00Z');
  });

  it('postpones while a rollout is in progress, then restarts once', () => {
    const sim = new Simulation('2026-01-15T02:00:00Z');
    sim.reconcile();
    sim.clock.set('2026-01-15T03:00:00Z');
    sim.rolloutInProgress = true;
    const postponed = sim.reconcile();
    expect(postponed.action).to.equal('postpone');
    expect(postponed.requeueAfterMs).to.be.greaterThan(0);
    sim.clock.advance(120_000);
    sim.reconcile();
    expect(sim.restarts).to.deep.equal([]);
    sim.rolloutInProgress = false;
    sim.clock.advance(1000);
    expect(sim.reconcile().action).to.equal('restart');
    expect(sim.reconcile().action).to.equal('none');
    expect(sim.restarts).to.deep.equal(['2026-01-15T03:02:01Z']);
  });

  it('skips the window while paused', () => {
    const sim = new Simulation('2026-01-15T02:00:00Z');
    sim.reconcile();
    sim.paused = true;
    sim.clock.set('2026-01-15T03:30:00Z');
    expect(sim.reconcile().action).to.equal('skip-paused');
    sim.paused = false;
    sim.reconcile();
    expect(sim.restarts).to.deep.equal([]);
    expect(sim.status.nextRestartTime).to.equal('2026-01-16T03:00:00Z');
  });

  it('replans when the schedule changes, and keeps the last restart when it is switched off', () => {
    const sim = new Simulation('2026-01-15T02:00:00Z');
    sim.reconcile();
    sim.schedule = parseDailySchedule('05:30', 'UTC', 0);
    expect(sim.reconcile().nextRestartTime).to.equal('2026-01-15T05:30:00Z');
    sim.clock.set('2026-01-15T05:30:00Z');
    sim.reconcile();
    expect(sim.restarts).to.have.length(1);

    const off = decideRoll({
      now: sim.clock.now(),
      schedule: undefined,
      seed: 'uid-1',
      paused: false,
      rolloutInProgress: false,
      status: sim.status,
      templateRestartedAt: sim.templateRestartedAt,
    });
    expect(off.action).to.equal('none');
    expect(off.restartedAt, 'the annotation stays, so turning it off does not roll').to.equal(
      sim.templateRestartedAt,
    );
    expect(off.nextRestartTime).to.equal(undefined);
  });
});
