// The worker's side of the replay cache kept by the primary: one IPC round trip per handshake.
import type { ReplayGuard } from './replay-cache.js';

export interface ReplayRequest {
  readonly type: 'replay-check';
  readonly id: number;
  readonly key: string;
}

/** Remember a key; no answer. */
export interface ReplayRecord {
  readonly type: 'replay-record';
  readonly key: string;
}

export interface ReplayAnswer {
  readonly type: 'replay-answer';
  readonly id: number;
  readonly seen: boolean;
}

/** If the primary does not answer in time, let the client in: availability beats a lost check. */
const ANSWER_TIMEOUT_MS = 2000;

export class SharedReplayGuard implements ReplayGuard {
  readonly #pending = new Map<number, (seen: boolean) => void>();
  readonly #send: (msg: ReplayRequest | ReplayRecord) => void;
  #nextId = 1;

  constructor(send: (msg: ReplayRequest | ReplayRecord) => void) {
    this.#send = send;
  }

  seen(key: Buffer): Promise<boolean> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve(false);
      }, ANSWER_TIMEOUT_MS);
      this.#pending.set(id, (seen) => {
        clearTimeout(timer);
        resolve(seen);
      });
      this.#send({ type: 'replay-check', id, key: key.toString('base64') });
    });
  }

  record(key: Buffer): void {
    this.#send({ type: 'replay-record', key: key.toString('base64') });
  }

  answer(msg: ReplayAnswer): void {
    const resolve = this.#pending.get(msg.id);
    this.#pending.delete(msg.id);
    resolve?.(msg.seen);
  }
}
