// The counters every worker reports once a second, added up in the primary: each worker's latest
// snapshot plus what workers that have since exited counted, so totals never go backwards.
import { field, messageKind } from '../process/ipc.js';
import type { PrimaryIpc, WorkerLink } from '../process/primary.js';
import { addSnapshot, retire, sumSnapshots } from './aggregate.js';
import { type CounterSnapshot, emptySnapshot } from './counters.js';

/** A worker's counters, sent every second. */
export const COUNTERS = messageKind('counters', {
  counters: field.object<CounterSnapshot>(
    (c) => typeof c.perUser === 'object' && c.perUser !== null && Array.isArray(c.readyTargetKeys),
  ),
});

export class WorkerTotals {
  readonly #latest = new Map<WorkerLink, CounterSnapshot>();
  readonly #retired = emptySnapshot();

  constructor(ipc: PrimaryIpc) {
    ipc.on(COUNTERS, (msg, worker) => {
      if (worker.alive) this.#latest.set(worker, msg.counters);
    });
    ipc.onWorkerExit((worker) => {
      const last = this.#latest.get(worker);
      if (last) addSnapshot(this.#retired, retire(last));
      this.#latest.delete(worker);
    });
  }

  /** Every worker's counters added up, including workers that have exited since. */
  totals(): CounterSnapshot {
    return sumSnapshots([this.#retired, ...this.#latest.values()]);
  }

  /** Middle mode: distinct targets that at least one worker holds a ready connection to. */
  readyTargets(): number {
    return new Set([...this.#latest.values()].flatMap((s) => s.readyTargetKeys)).size;
  }
}
