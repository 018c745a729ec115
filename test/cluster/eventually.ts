// Bounded polling for tests: the cluster converges asynchronously (controllers,
// garbage collection, RBAC caches), so assertions retry until a deadline.
import { setTimeout as sleep } from 'node:timers/promises';

export interface EventuallyOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
}

/**
 * Calls `probe` until it returns without throwing and returns its value; after
 * `timeoutMs` (default 30 s) rethrows the last failure, so the test shows the
 * real assertion message rather than a bare time-out.
 */
export async function eventually<T>(
  probe: () => Promise<T>,
  { timeoutMs = 30_000, intervalMs = 250 }: EventuallyOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  const maxAttempts = Math.ceil(timeoutMs / intervalMs) + 1;
  let lastError: unknown = new Error('eventually: no attempt made');
  for (let attempt = 0; attempt < maxAttempts && Date.now() <= deadline; attempt++) {
    try {
      return await probe();
    } catch (err) {
      lastError = err;
    }
    await sleep(intervalMs);
  }
  throw lastError;
}
