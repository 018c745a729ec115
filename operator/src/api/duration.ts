// Durations as the CRD writes them: "24h", "90m", "1h30m", "45s", or "0".

const PART = /([0-9]+)(h|m|s)/g;
const WHOLE = /^(0|([0-9]+(h|m|s))+)$/;
const UNIT_SECONDS = { h: 3600, m: 60, s: 1 } as const;

export class DurationError extends Error {
  readonly code = 'ERR_DURATION';
  constructor(value: string) {
    super(`"${value}" is not a duration such as 30s, 15m, 24h or 1h30m`);
    this.name = 'DurationError';
  }
}

/** Whole seconds in a duration string; throws DurationError for anything else. */
export function parseDurationSeconds(value: string): number {
  if (!WHOLE.test(value)) throw new DurationError(value);
  let total = 0;
  for (const m of value.matchAll(PART)) {
    total += Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS];
  }
  if (!Number.isSafeInteger(total)) throw new DurationError(value);
  return total;
}
