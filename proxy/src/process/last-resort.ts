// The last resort of a process that serves many clients: an exception nobody caught (a timer, an
// event handler) must not take every client of the worker down with it. Errors in a client's own
// code path are caught at that edge; this handler is only for what slipped through. It logs (at
// most once per interval, so a repeating error cannot fill the disk), counts, and keeps serving.
// Not for errors that leave the process unusable: a failed assertion inside Node, or out of memory,
// still ends it, and the primary starts a new worker.
export interface LastResortOptions {
  readonly log: (message: string, fields: Record<string, unknown>) => void;
  readonly count: () => void;
  readonly intervalMs?: number;
  readonly now?: () => number;
}

/** Errors after which the process state cannot be trusted: let it die and be restarted. */
function isFatal(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ERR_INTERNAL_ASSERTION' || (err instanceof RangeError && /heap|memory/i.test(err.message));
}

/** Returns the handler to install for 'uncaughtException' and 'unhandledRejection'. */
export function lastResort(options: LastResortOptions): (err: unknown) => void {
  const interval = options.intervalMs ?? 10_000;
  const now = options.now ?? Date.now;
  let lastLog = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (err: unknown) => {
    if (isFatal(err)) throw err;
    options.count();
    const t = now();
    if (t - lastLog < interval) {
      suppressed++;
      return;
    }
    lastLog = t;
    const e = err instanceof Error ? err : new Error(String(err));
    options.log('uncaught error; the process keeps serving', {
      error: e.message,
      code: (e as NodeJS.ErrnoException).code,
      stack: e.stack?.split('\n').slice(0, 4).join(' | '),
      suppressedSinceLast: suppressed,
    });
    suppressed = 0;
  };
}

/** Installs `handler` on this process for uncaught exceptions and unhandled rejections. */
export function installLastResort(handler: (err: unknown) => void): void {
  process.on('uncaughtException', handler);
  process.on('unhandledRejection', handler);
}
