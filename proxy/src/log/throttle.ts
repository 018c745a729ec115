// Logs that a protection fails closed, or that a write keeps failing, must not flood the log when
// it happens thousands of times a second: one line per interval, with the running count in it.

/** Wraps `fn` so that it runs at most once per `everyMs`; calls in between are dropped. */
export function throttled<A extends unknown[]>(
  everyMs: number,
  fn: (...args: A) => void,
): (...args: A) => void {
  let last = Number.NEGATIVE_INFINITY;
  return (...args: A) => {
    const now = Date.now();
    if (now - last < everyMs) return;
    last = now;
    fn(...args);
  };
}
