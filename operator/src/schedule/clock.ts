// Time for everything that decides by the calendar (the daily roll, leases), injectable so tests
// can move it. Waiting still uses real timers: a fake clock changes what time it is, not how long
// a timer takes.

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to. */
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

/** RFC 3339 with whole seconds, as Kubernetes writes times. */
export function formatTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** Milliseconds from an RFC 3339 string; undefined for a missing or unreadable one. */
export function parseTime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}
