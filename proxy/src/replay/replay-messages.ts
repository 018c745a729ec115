// Replay checks over IPC: the workers ask, the primary (which holds the one cache of the pod)
// answers. Checks of one event-loop turn travel as one message; only fingerprints travel.
import { field, type MessageOf, messageKind } from '../process/ipc.js';
import type { PrimaryIpc } from '../process/primary.js';
import type { ReplayService } from './replay-cache.js';
import type { ReplayVerdict } from './replay-window.js';

/** Fingerprints: two 32-bit words per check (replay/replay-window.ts fingerprint()). */
export const REPLAY_CHECK = messageKind(
  'replay-check',
  { ids: field.numbers, fingerprints: field.numbers },
  (m) => m.fingerprints.length === 2 * m.ids.length,
);
export const REPLAY_ANSWER = messageKind('replay-answer', {
  ids: field.numbers,
  verdicts: field.list<ReplayVerdict>(),
});

export type ReplayRequest = MessageOf<typeof REPLAY_CHECK>;
export type ReplayAnswer = MessageOf<typeof REPLAY_ANSWER>;

/** The replay cache shared across pods (replay/store-replay.ts), behind this pod's own. */
export interface SharedReplayStore {
  /** Claims a fingerprint this pod's cache found fresh; 'replay' when another proxy had it. */
  claim(lo: number, hi: number): Promise<ReplayVerdict>;
}

/** Answers the workers' replay checks from `replay`, then, for what it let through, from `shared`. */
export function serveReplayChecks(ipc: PrimaryIpc, replay: ReplayService, shared?: SharedReplayStore): void {
  ipc.on(REPLAY_CHECK, (msg, worker) => {
    const fps = msg.fingerprints;
    const local = msg.ids.map((_, i) => replay.check(fps[2 * i]! >>> 0, fps[2 * i + 1]! >>> 0));
    if (shared === undefined) {
      worker.send(REPLAY_ANSWER, { type: 'replay-answer', ids: msg.ids, verdicts: local });
      return;
    }
    // What this pod's cache let through is claimed in the store: one pipelined round trip.
    return Promise.all(
      local.map((v, i) => (v === 'fresh' ? shared.claim(fps[2 * i]!, fps[2 * i + 1]!) : v)),
    ).then((verdicts) => worker.send(REPLAY_ANSWER, { type: 'replay-answer', ids: msg.ids, verdicts }));
  });
}
