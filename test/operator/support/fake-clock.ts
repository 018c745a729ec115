// A clock for the operator's tests: it only moves when told to. Waiting still uses real timers: it
// changes what time it is, not how long a timer takes.
import type { Clock } from '../../../operator/src/schedule/clock.js';

export class FakeClock implements Clock {
  #now: number;

  constructor(start: number | string | Date) {
    this.#now = new Date(start).getTime();
    if (Number.isNaN(this.#now)) throw new RangeError(`not a time: ${String(start)}`);
  }

  now(): number {
    return this.#now;
  }

  set(time: number | string | Date): void {
    const t = new Date(time).getTime();
    if (Number.isNaN(t)) throw new RangeError(`not a time: ${String(time)}`);
    this.#now = t;
  }

  advance(ms: number): void {
    this.#now += ms;
  }
}
