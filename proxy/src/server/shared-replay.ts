// The worker's side of the replay cache kept by the primary. Checks made in the same turn of the
// event loop travel as one IPC message and come back as one: the per-message cost of IPC, not the
// cache, was the largest part of a handshake's CPU time.
import type { ReplayGuard } from './replay-cache.js';

export interface ReplayRequest {
  readonly type: 'replay-check';
  readonly ids: readonly number[];
  readonly keys: readonly string[];
}

/** Remember keys; no answer. */
export interface ReplayRecord {
  readonly type: 'replay-record';
  readonly keys: readonly string[];
}

export interface ReplayAnswer {
  readonly type: 'replay-answer';
  readonly ids: readonly number[];
  readonly seen: readonly boolean[];
}

/** If the primary does not answer in time, let the client in: availability beats a lost check. */
const ANSWER_TIMEOUT_MS = 2000;

export class SharedReplayGuard implements ReplayGuard {
  readonly #pending = new Map<number, (seen: boolean) => void>();
  readonly #send: (msg: ReplayRequest | ReplayRecord) => void;
  #nextId = 1;
  #ids: number[] = [];
  #keys: string[] = [];
  #records: string[] = [];
  #scheduled = false;

  constructor(send: (msg: ReplayRequest | ReplayRecord) => void) {
    this.#send = send;
  }

  seen(key: Buffer): Promise<boolean> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#ids.push(id);
      this.#keys.push(key.toString('base64'));
      this.#schedule();
    });
  }

  record(key: Buffer): void {
    this.#records.push(key.toString('base64'));
    this.#schedule();
  }

  answer(msg: ReplayAnswer): void {
    msg.ids.forEach((id, i) => {
      const resolve = this.#pending.get(id);
      this.#pending.delete(id);
      resolve?.(msg.seen[i] === true);
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#records.length > 0) {
      this.#send({ type: 'replay-record', keys: this.#records });
      this.#records = [];
    }
    if (this.#ids.length === 0) return;
    const ids = this.#ids;
    this.#send({ type: 'replay-check', ids, keys: this.#keys });
    this.#ids = [];
    this.#keys = [];
    setTimeout(() => {
      for (const id of ids) {
        const resolve = this.#pending.get(id);
        this.#pending.delete(id);
        resolve?.(false);
      }
    }, ANSWER_TIMEOUT_MS).unref();
  }
}
