import { expect } from 'chai';
import fc from 'fast-check';
import {
  nextOccurrence,
  parseDailySchedule,
  parseTimeOfDay,
  ScheduleError,
  scheduleKey,
  zonedInstant,
} from '../../../operator/src/schedule/daily.js';

const iso = (ms: number): string => new Date(ms).toISOString();

describe('daily schedule', () => {
  it('reads "HH:MM" and the daily cron form', () => {
    expect(parseTimeOfDay('04:00')).to.deep.equal({ hour: 4, minute: 0 });
    expect(parseTimeOfDay('4:05')).to.deep.equal({ hour: 4, minute: 5 });
    expect(parseTimeOfDay('30 23 * * *')).to.deep.equal({ hour: 23, minute: 30 });
  });

  it('rejects times that are not a daily time, and unknown time zones', () => {
    for (const bad of ['24:00', '4', '0 4 * * 1', '*/5 * * * *', '']) {
      expect(() => parseTimeOfDay(bad), bad).to.throw(ScheduleError);
    }
    expect(() => parseDailySchedule('04:00', 'Mars/Olympus', 0)).to.throw(ScheduleError, /IANA/);
  });

  it('places the time in the schedule time zone', () => {
    // Berlin is UTC+1 in winter and UTC+2 in summer.
    expect(iso(zonedInstant({ year: 2026, month: 1, day: 15 }, 4, 0, 'Europe/Berlin'))).to.equal(
      '2026-01-15T03:00:00.000Z',
    );
    expect(iso(zonedInstant({ year: 2026, month: 7, day: 15 }, 4, 0, 'Europe/Berlin'))).to.equal(
      '2026-07-15T02:00:00.000Z',
    );
    expect(iso(zonedInstant({ year: 2026, month: 7, day: 15 }, 4, 0, 'UTC'))).to.equal(
      '2026-07-15T04:00:00.000Z',
    );
  });

  it('runs a time skipped by the spring-forward jump an hour later, and a doubled time once', () => {
    // 2026-03-29: Berlin clocks jump from 02:00 to 03:00 (01:00Z).
    expect(iso(zonedInstant({ year: 2026, month: 3, day: 29 }, 2, 30, 'Europe/Berlin'))).to.equal(
      '2026-03-29T01:30:00.000Z',
    );
    // 2026-10-25: 02:30 happens twice (00:30Z at +2, 01:30Z at +1); the first one counts.
    expect(iso(zonedInstant({ year: 2026, month: 10, day: 25 }, 2, 30, 'Europe/Berlin'))).to.equal(
      '2026-10-25T00:30:00.000Z',
    );
  });

  it('gives the next occurrence strictly after a time', () => {
    const s = parseDailySchedule('04:00', 'Europe/Berlin', 0);
    const before = Date.parse('2026-01-15T02:59:59Z');
    expect(iso(nextOccurrence(s, 'uid', before))).to.equal('2026-01-15T03:00:00.000Z');
    const exactly = Date.parse('2026-01-15T03:00:00Z');
    expect(iso(nextOccurrence(s, 'uid', exactly))).to.equal('2026-01-16T03:00:00.000Z');
  });

  it('adds a jitter that is stable per proxy and day and stays within the bound', () => {
    const s = parseDailySchedule('04:00', 'UTC', 1800);
    const day = Date.parse('2026-05-01T00:00:00Z');
    const a = nextOccurrence(s, 'proxy-a', day);
    expect(nextOccurrence(s, 'proxy-a', day)).to.equal(a);
    expect(a - Date.parse('2026-05-01T04:00:00Z')).to.be.within(0, 1800_000);
    const offsets = new Set(['a', 'b', 'c', 'd', 'e', 'f'].map((seed) => nextOccurrence(s, seed, day)));
    expect(offsets.size, 'different proxies get different offsets').to.be.greaterThan(1);
  });

  it('has exactly one occurrence per day, a day apart, for any zone, time and jitter', () => {
    const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Kolkata'];
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: 0, max: 23 }),
        fc.integer({ min: 0, max: 59 }),
        fc.integer({ min: 0, max: 7200 }),
        fc.integer({ min: Date.parse('2025-01-01'), max: Date.parse('2028-01-01') }),
        (zone, hour, minute, jitter, start) => {
          const s = parseDailySchedule(`${hour}:${String(minute).padStart(2, '0')}`, zone, jitter);
          let t = start;
          for (let i = 0; i < 5; i++) {
            const next = nextOccurrence(s, 'seed', t);
            expect(next).to.be.greaterThan(t);
            if (i > 0) expect(next - t).to.be.within(20 * 3600_000, 28 * 3600_000);
            t = next;
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('names the schedule so a change of time, zone or jitter is noticed', () => {
    const key = scheduleKey(parseDailySchedule('4:00', 'UTC', 0));
    expect(key).to.equal('04:00 UTC +0s');
    expect(scheduleKey(parseDailySchedule('04:00', 'Europe/Berlin', 0))).to.not.equal(key);
    expect(scheduleKey(parseDailySchedule('04:00', 'UTC', 60))).to.not.equal(key);
  });
});
