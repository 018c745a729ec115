// One result type for every phase of a reconcile; the requeue arithmetic lives in one place.
import { expect } from 'chai';
import type { MTProxy } from '../../../operator/src/api/types.js';
import { combine, DONE, requeueAfter, requeueDelay } from '../../../operator/src/reconcile/result.js';
import { renderStatus } from '../../../operator/src/render/status.js';

describe('operator: reconcile results and blocked status', () => {
  it('combine keeps the soonest requeue any phase asked for, and nothing when none did', () => {
    expect(combine(DONE, requeueAfter(30_000), requeueAfter(5_000), undefined)).to.deep.equal({
      requeueAfterMs: 5_000,
    });
    expect(combine(DONE, undefined)).to.deep.equal(DONE);
    expect(combine(requeueAfter(0), requeueAfter(10))).to.deep.equal({ requeueAfterMs: 0 });
  });

  it('the queue waits at least a second and at most the cap', () => {
    expect(requeueDelay(requeueAfter(0), 3_600_000)).to.equal(1000);
    expect(requeueDelay(requeueAfter(7_200_000), 3_600_000)).to.equal(3_600_000);
    expect(requeueDelay(DONE, 3_600_000)).to.equal(undefined);
  });

  const mtp: MTProxy = {
    apiVersion: 'mtkube.dev/v1alpha1',
    kind: 'MTProxy',
    metadata: { name: 'web', namespace: 'ns', uid: 'u', generation: 3 },
    spec: {},
    status: {
      observedGeneration: 2,
      replicas: 1,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Available',
          message: '1 of 1 pods available',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    },
  };
  const now = Date.parse('2026-02-01T00:00:00Z');

  it('a Conflict marks the generation observed, keeps what was observed before and says which object', () => {
    const st = renderStatus(mtp, {
      now,
      blocked: { reason: 'Conflict', message: 'Service web already exists' },
    });
    expect(st.observedGeneration).to.equal(3);
    expect(st.replicas).to.equal(1);
    const byType = Object.fromEntries((st.conditions ?? []).map((c) => [c.type, c]));
    expect(byType.Ready).to.include({
      status: 'False',
      reason: 'Conflict',
      lastTransitionTime: '2026-02-01T00:00:00Z',
    });
    expect(byType.Degraded).to.include({
      status: 'True',
      reason: 'Conflict',
      message: 'Service web already exists',
    });
  });

  it('a failed reconcile does not claim to have observed the generation', () => {
    const st = renderStatus(mtp, { now, blocked: { reason: 'ReconcileFailed', message: 'timeout' } });
    expect(st.observedGeneration).to.equal(2);
  });
});
