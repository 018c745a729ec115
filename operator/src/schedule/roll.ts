// The daily roll as one pure decision: given the time, the schedule and what status remembers,
// restart now, wait, or postpone. Remembering nextRestartTime in status (and reading the annotation
// already on the Deployment) is what makes an operator restart neither skip nor repeat a window.
import { formatTime, parseTime } from './clock.js';
import { type DailySchedule, nextOccurrence, scheduleKey } from './daily.js';

/** How often to look again while a due restart waits for a rollout to finish. */
export const POSTPONE_RETRY_MS = 15_000;

export interface RollInput {
  readonly now: number;
  /** undefined when the daily restart is off. */
  readonly schedule: DailySchedule | undefined;
  /** Makes the jitter differ between proxies: the MTProxy's uid. */
  readonly seed: string;
  readonly paused: boolean;
  readonly rolloutInProgress: boolean;
  readonly status: {
    readonly lastRestartTime?: string | undefined;
    readonly nextRestartTime?: string | undefined;
    readonly restartSchedule?: string | undefined;
  };
  /** The restart annotation on the Deployment's pod template now, if any. */
  readonly templateRestartedAt: string | undefined;
}

export type RollAction = 'none' | 'restart' | 'postpone' | 'skip-paused';

export interface RollDecision {
  readonly action: RollAction;
  /** Value of the restart annotation to render (undefined: none yet). Changes only on restart. */
  readonly restartedAt: string | undefined;
  readonly lastRestartTime: string | undefined;
  readonly nextRestartTime: string | undefined;
  readonly restartSchedule: string | undefined;
  /** Look again after this long (undefined: nothing scheduled). */
  readonly requeueAfterMs: number | undefined;
  /** The window that fired or was postponed. */
  readonly dueAt: string | undefined;
}

function latest(...times: (string | undefined)[]): number | undefined {
  const parsed = times.map(parseTime).filter((t): t is number => t !== undefined);
  return parsed.length > 0 ? Math.max(...parsed) : undefined;
}

export function decideRoll(input: RollInput): RollDecision {
  const { now, schedule, status } = input;
  const last = latest(status.lastRestartTime, input.templateRestartedAt);
  const lastText = last === undefined ? undefined : formatTime(last);
  if (!schedule) {
    return {
      action: 'none',
      restartedAt: lastText,
      lastRestartTime: lastText,
      nextRestartTime: undefined,
      restartSchedule: undefined,
      requeueAfterMs: undefined,
      dueAt: undefined,
    };
  }
  const key = scheduleKey(schedule);
  const remembered = status.restartSchedule === key ? parseTime(status.nextRestartTime) : undefined;
  // A remembered window already served (restart written, status not yet) is not due again.
  let planned =
    remembered !== undefined && (last === undefined || last < remembered)
      ? remembered
      : nextOccurrence(schedule, input.seed, Math.max(now, last ?? 0));
  const base = { restartedAt: lastText, lastRestartTime: lastText, restartSchedule: key };

  if (now < planned) {
    return {
      ...base,
      action: 'none',
      nextRestartTime: formatTime(planned),
      requeueAfterMs: planned - now,
      dueAt: undefined,
    };
  }
  const dueAt = formatTime(planned);
  if (input.paused) {
    planned = nextOccurrence(schedule, input.seed, now);
    return {
      ...base,
      action: 'skip-paused',
      nextRestartTime: formatTime(planned),
      requeueAfterMs: planned - now,
      dueAt,
    };
  }
  if (input.rolloutInProgress) {
    return {
      ...base,
      action: 'postpone',
      nextRestartTime: dueAt,
      requeueAfterMs: POSTPONE_RETRY_MS,
      dueAt,
    };
  }
  const restartedAt = formatTime(now);
  const next = nextOccurrence(schedule, input.seed, now);
  return {
    action: 'restart',
    restartedAt,
    lastRestartTime: restartedAt,
    nextRestartTime: formatTime(next),
    restartSchedule: key,
    requeueAfterMs: next - now,
    dueAt,
  };
}
