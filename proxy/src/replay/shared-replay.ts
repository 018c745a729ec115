// The worker's side of the replay cache kept by the primary. Checks made in the same turn of the
// event loop travel as one IPC message and come back as one: the per-message cost of IPC, not the
// cache, was the largest part of a handshake's CPU time. Only fingerprints travel (8 bytes each).
// No answer in time is a replay: fail closed (the client is masked like any replay), counted and
// logged once a minute.

import type { Logger } from '../log/logger.js';
import { throttled } from '../log/throttle.js';
import type { WorkerIpc } from '../process/worker.js';
import type { ReplayGuard, ReplayOutcome } from '../session/ports.js';
import { REPLAY_ANSWER, REPLAY_CHECK, type ReplayAnswer, type ReplayRequest } from './replay-messages.js';
import { fingerprint } from './replay-window.js';

export const ANSWER_TIMEOUT_MS = 2000;
const LOG_EVERY_MS = 60_000;

export class SharedReplayGuard implements ReplayGuard {
  readonly #pending = new Map<number, (outcome: ReplayOutcome) => void>();
  readonly #send: (msg: ReplayRequest) => void;
  readonly #report: (unanswered: number) => void;
  readonly #timeoutMs: number;
  #nextId = 1;
  #ids: number[] = [];
  #fingerprints: number[] = [];
  #scheduled = false;
  #unanswered = 0;

  constructor(send: (msg: ReplayRequest) => void, log?: Logger, timeoutMs = ANSWER_TIMEOUT_MS) {
    this.#send = send;
    this.#timeoutMs = timeoutMs;
    this.#report = throttled(LOG_EVERY_MS, (unanswered: number) =>
      log?.error('replay checks unanswered by the primary; refusing those handshakes as replays', {
        unanswered,
        timeoutMs,
      }),
    );
  }

  check(key: Buffer): Promise<ReplayOutcome> {
    const id = this.#nextId++;
    const [lo, hi] = fingerprint(key);
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#ids.push(id);
      this.#fingerprints.push(lo, hi);
      this.#schedule();
    });
  }

  answer(msg: ReplayAnswer): void {
    msg.ids.forEach((id, i) => {
      const resolve = this.#pending.get(id);
      this.#pending.delete(id);
      resolve?.(msg.verdicts[i] ?? 'replay');
    });
  }

  /** Checks that got no answer in time, since start. */
  get unanswered(): number {
    return this.#unanswered;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#ids.length === 0) return;
    const ids = this.#ids;
    this.#send({ type: 'replay-check', ids, fingerprints: this.#fingerprints });
    this.#ids = [];
    this.#fingerprints = [];
    setTimeout(() => this.#expire(ids), this.#timeoutMs).unref();
  }

  #expire(ids: readonly number[]): void {
    let late = 0;
    for (const id of ids) {
      const resolve = this.#pending.get(id);
      if (resolve === undefined) continue;
      this.#pending.delete(id);
      late++;
      resolve('no-answer');
    }
    if (late === 0) return;
    this.#unanswered += late;
    this.#report(this.#unanswered);
  }
}

/** A worker's replay guard: checks go to the primary's cache, answers come back over `ipc`. */
export function replayGuardOverIpc(ipc: WorkerIpc, log: Logger): SharedReplayGuard {
  const guard = new SharedReplayGuard((msg) => ipc.send(REPLAY_CHECK, msg), log);
  ipc.on(REPLAY_ANSWER, (msg) => guard.answer(msg));
  return guard;
}
