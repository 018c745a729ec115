// A middle-mode observer (proxy/src/middle/events.ts) for tests: every event only adds
// one to its count, so a test can see what the pool and connections reported.
import { type MiddleObserver, NULL_MIDDLE_OBSERVER } from '../../proxy/src/middle/events.js';

export type CountingObserver = MiddleObserver & { counts: Record<string, number> };

/** An observer whose `counts[event]` is how many times that event was reported. */
export function countingObserver(): CountingObserver {
  const counts: Record<string, number> = {};
  const observer = { ...NULL_MIDDLE_OBSERVER, counts } as CountingObserver;
  for (const key of Object.keys(NULL_MIDDLE_OBSERVER) as (keyof MiddleObserver)[]) {
    observer[key] = () => {
      counts[key] = (counts[key] ?? 0) + 1;
    };
  }
  return observer;
}
