// The clock check of middle mode (docs/protocol.md §6.11): Telegram's middle proxies refuse an
// RPC nonce whose timestamp is more than 30 s from their clock, so a proxy with a skewed clock
// loses every middle-proxy connection with nothing in its own logs saying why. Each HTTP fetch of
// Telegram's config carries a Date header from Telegram's clock; we compare ours with it.
//
// Pure: the times of one fetch in, a verdict out. The Date header has whole seconds (the server's
// clock truncated), so Telegram's time at the answer lies in [date, date + 1); we take the middle
// of that second and the middle of our request as the two readings, and only call the clock
// skewed when the skew exceeds the limit by more than that uncertainty.

/** The middle proxies' tolerance (official net/net-tcp-rpc-server.c). */
export const MIDDLE_PROXY_CLOCK_LIMIT_SECONDS = 30;

/** What one HTTP fetch tells about the clocks. */
export interface DateObservation {
  /** The URL whose answer carried the header. */
  readonly source: string;
  /** The Date header as received (undefined: the answer had none). */
  readonly dateHeader: string | undefined;
  /** Our clock (ms since the epoch) when the request was sent and when the answer's headers came. */
  readonly sentAtMs: number;
  readonly receivedAtMs: number;
}

export type ClockState = 'ok' | 'skewed' | 'unknown';

export interface ClockCheck {
  readonly state: ClockState;
  /** Our clock minus Telegram's, seconds (positive: we are ahead); undefined when unknown. */
  readonly skewSeconds: number | undefined;
  /** How far either way the true skew may lie from skewSeconds, seconds. */
  readonly uncertaintySeconds: number | undefined;
  /** Unix seconds of our clock when checked. */
  readonly checkedAt: number;
  readonly source: string;
  /** Why the state is unknown. */
  readonly reason?: string;
}

export function checkClock(o: DateObservation, limitSeconds = MIDDLE_PROXY_CLOCK_LIMIT_SECONDS): ClockCheck {
  const checkedAt = Math.floor(o.receivedAtMs / 1000);
  const unknown = (reason: string): ClockCheck => ({
    state: 'unknown',
    skewSeconds: undefined,
    uncertaintySeconds: undefined,
    checkedAt,
    source: o.source,
    reason,
  });
  if (o.dateHeader === undefined || o.dateHeader.trim() === '')
    return unknown('the answer has no Date header');
  const theirs = Date.parse(o.dateHeader);
  // RFC 9110 dates always say GMT; anything else (or nonsense) is not Telegram's clock reading.
  if (!Number.isFinite(theirs) || !/GMT\s*$/.test(o.dateHeader)) {
    return unknown(`the Date header is not an HTTP date: ${JSON.stringify(o.dateHeader.slice(0, 64))}`);
  }
  if (o.receivedAtMs < o.sentAtMs) return unknown('our clock went back during the request');
  const ours = (o.sentAtMs + o.receivedAtMs) / 2;
  const skewSeconds = (ours - (theirs + 500)) / 1000;
  const uncertaintySeconds = (o.receivedAtMs - o.sentAtMs) / 2000 + 0.5;
  const skewed = Math.abs(skewSeconds) - uncertaintySeconds > limitSeconds;
  return {
    state: skewed ? 'skewed' : 'ok',
    skewSeconds,
    uncertaintySeconds,
    checkedAt,
    source: o.source,
  };
}
