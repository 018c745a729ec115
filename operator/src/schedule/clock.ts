// Time for everything that decides by the calendar (the daily roll, leases), injectable so tests
// can move it (test/operator/support/fake-clock.ts). Waiting still uses real timers: a fake clock
// changes what time it is, not how long a timer takes.

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

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
