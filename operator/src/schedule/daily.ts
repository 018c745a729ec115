// A daily time in an IANA time zone, with a per-proxy, per-day jitter: when the daily roll is due.
// Pure: instants in, instants out; the time-zone rules come from Intl.
import { createHash } from 'node:crypto';

export interface DailySchedule {
  readonly hour: number;
  readonly minute: number;
  readonly timeZone: string;
  /** The occurrence of each day moves later by a stable offset in [0, jitterSeconds]. */
  readonly jitterSeconds: number;
}

export class ScheduleError extends Error {
  readonly code = 'ERR_SCHEDULE';
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleError';
  }
}

const HH_MM = /^([01]?[0-9]|2[0-3]):([0-5][0-9])$/;
const CRON_DAILY = /^([0-5]?[0-9]) ([01]?[0-9]|2[0-3]) \* \* \*$/;

/** "HH:MM" or the cron form "M H * * *" (every day). */
export function parseTimeOfDay(schedule: string): { hour: number; minute: number } {
  const s = schedule.trim();
  const hm = HH_MM.exec(s);
  if (hm) return { hour: Number(hm[1]), minute: Number(hm[2]) };
  const cron = CRON_DAILY.exec(s);
  if (cron) return { hour: Number(cron[2]), minute: Number(cron[1]) };
  throw new ScheduleError(`"${schedule}" is not a daily time: use "HH:MM" or "M H * * *"`);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      throw new ScheduleError(`"${timeZone}" is not an IANA time zone such as UTC or Europe/Berlin`);
    }
    formatters.set(timeZone, f);
  }
  return f;
}

export function checkTimeZone(timeZone: string): void {
  formatterFor(timeZone);
}

export function parseDailySchedule(schedule: string, timeZone: string, jitterSeconds: number): DailySchedule {
  checkTimeZone(timeZone);
  if (!Number.isInteger(jitterSeconds) || jitterSeconds < 0 || jitterSeconds >= 86_400) {
    throw new ScheduleError('jitter must be shorter than a day');
  }
  return { ...parseTimeOfDay(schedule), timeZone, jitterSeconds };
}

interface LocalDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

function wallClock(
  instant: number,
  timeZone: string,
): LocalDate & { hour: number; minute: number; second: number } {
  const parts: Record<string, number> = {};
  for (const p of formatterFor(timeZone).formatToParts(new Date(instant))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return {
    year: parts.year!,
    month: parts.month!,
    day: parts.day!,
    hour: parts.hour!,
    minute: parts.minute!,
    second: parts.second!,
  };
}

/** How far the zone's wall clock is ahead of UTC at `instant`, in ms. */
function zoneOffset(instant: number, timeZone: string): number {
  const w = wallClock(instant, timeZone);
  const asUtc = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return asUtc - Math.floor(instant / 1000) * 1000;
}

/**
 * The instant the zone's clocks show `hour:minute` on a date. A time shown twice (clocks go back)
 * is its first showing; a time skipped (clocks go forward) is read with the offset before the jump,
 * so 02:30 on a night that jumps from 02:00 to 03:00 becomes 03:30.
 */
export function zonedInstant(date: LocalDate, hour: number, minute: number, timeZone: string): number {
  const wall = Date.UTC(date.year, date.month - 1, date.day, hour, minute);
  const halfDay = 12 * 3600 * 1000;
  const before = wall - zoneOffset(wall - halfDay, timeZone);
  const after = wall - zoneOffset(wall + halfDay, timeZone);
  const shown = [before, after].filter((t) => t + zoneOffset(t, timeZone) === wall);
  return shown.length > 0 ? Math.min(...shown) : before;
}

function dateKey(d: LocalDate): string {
  return `${d.year}-${String(d.month).padStart(2, '0')}-${String(d.day).padStart(2, '0')}`;
}

/** A stable offset for one proxy (seed) and one day, so restarts and re-renders agree. */
export function jitterFor(seed: string, date: LocalDate, jitterSeconds: number): number {
  if (jitterSeconds === 0) return 0;
  const digest = createHash('sha256')
    .update(`${seed}/${dateKey(date)}`)
    .digest();
  return (digest.readUInt32BE(0) % (jitterSeconds + 1)) * 1000;
}

function addDays(d: LocalDate, days: number): LocalDate {
  const t = new Date(Date.UTC(d.year, d.month - 1, d.day + days));
  return { year: t.getUTCFullYear(), month: t.getUTCMonth() + 1, day: t.getUTCDate() };
}

/** The occurrence (scheduled time + jitter) of the day `date`. */
export function occurrenceOn(schedule: DailySchedule, seed: string, date: LocalDate): number {
  return (
    zonedInstant(date, schedule.hour, schedule.minute, schedule.timeZone) +
    jitterFor(seed, date, schedule.jitterSeconds)
  );
}

/** The first occurrence strictly after `after`. */
export function nextOccurrence(schedule: DailySchedule, seed: string, after: number): number {
  const today = wallClock(after, schedule.timeZone);
  // Yesterday's occurrence can still lie ahead when the jitter carries it past midnight.
  for (let offset = -1; offset <= 2; offset++) {
    const t = occurrenceOn(schedule, seed, addDays(today, offset));
    if (t > after) return t;
  }
  // Unreachable: tomorrow's time is always more than a day minus the jitter away.
  throw new ScheduleError('no occurrence within two days');
}

/** A string that changes whenever the schedule does; stored next to nextRestartTime. */
export function scheduleKey(schedule: DailySchedule): string {
  const hh = String(schedule.hour).padStart(2, '0');
  const mm = String(schedule.minute).padStart(2, '0');
  return `${hh}:${mm} ${schedule.timeZone} +${schedule.jitterSeconds}s`;
}
