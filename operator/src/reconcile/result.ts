// The one result type of a reconcile and of each of its phases, and all requeue arithmetic: phases
// say when they want to run again, combine() keeps the soonest, and requeueDelay() turns that into
// the delay the work queue uses. (Errors are not results: they throw, and the queue backs off.)

export interface ReconcileResult {
  /** Reconcile again after this long (scheduled work, waiting for something not watched). */
  readonly requeueAfterMs?: number | undefined;
}

export const DONE: ReconcileResult = {};

export const requeueAfter = (ms: number): ReconcileResult => ({ requeueAfterMs: ms });

/** Why a phase asks to look again, and after how long. */
export const RETRY_MS = {
  /** A Secret we cannot watch (not labelled for us) may appear or be fixed. */
  missingSecret: 30_000,
  /** An object of someone else's stands where a child should be. */
  conflict: 30_000,
} as const;

/** The soonest requeue any result asks for (cluster-api's LowestNonZeroResult). */
export function combine(...results: readonly (ReconcileResult | undefined)[]): ReconcileResult {
  let soonest: number | undefined;
  for (const r of results) {
    const ms = r?.requeueAfterMs;
    if (ms !== undefined && ms >= 0 && (soonest === undefined || ms < soonest)) soonest = ms;
  }
  return soonest === undefined ? DONE : requeueAfter(soonest);
}

/** The queue's delay for a result: at least a second (no hot loop), at most `capMs` (re-plan now and then). */
export function requeueDelay(result: ReconcileResult, capMs: number): number | undefined {
  if (result.requeueAfterMs === undefined) return undefined;
  return Math.min(capMs, Math.max(1000, result.requeueAfterMs));
}
