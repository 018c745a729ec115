// Quota periods: the name of the period a moment falls in, in a time zone. Usage is kept per
// period name, so a new period starts from zero by itself, in the store and in usage.json alike.
// Weeks start on Monday. Pure: the clock is an argument.
import type { QuotaPeriod } from './users-file.js';

const formats = new Map<string, Intl.DateTimeFormat>();

function civil(ms: number, timeZone: string): { y: number; m: number; d: number } {
  let f = formats.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formats.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(ms).map((p) => [p.type, p.value]));
  return { y: Number(parts.year), m: Number(parts.month), d: Number(parts.day) };
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** "all", "2026-12-06", "week-2026-11-30" (its Monday) or "2026-12". */
export function periodKey(period: QuotaPeriod, timeZone: string, nowMs: number): string {
  if (period === 'none') return 'all';
  const { y, m, d } = civil(nowMs, timeZone);
  if (period === 'monthly') return `${y}-${pad(m)}`;
  if (period === 'daily') return `${y}-${pad(m)}-${pad(d)}`;
  // The civil date's weekday, found on a UTC calendar (the zone only decided which date it is).
  const day = new Date(Date.UTC(y, m - 1, d));
  const back = (day.getUTCDay() + 6) % 7;
  const monday = new Date(day.getTime() - back * 86_400_000);
  return `week-${monday.getUTCFullYear()}-${pad(monday.getUTCMonth() + 1)}-${pad(monday.getUTCDate())}`;
}

/** Seconds the store should keep a period's usage: the period plus a margin, or forever. */
export function periodTtlSeconds(period: QuotaPeriod): number | undefined {
  switch (period) {
    case 'none':
      return undefined;
    case 'daily':
      return 3 * 86_400;
    case 'weekly':
      return 9 * 86_400;
    case 'monthly':
      return 35 * 86_400;
  }
}
