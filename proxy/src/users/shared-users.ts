// The worker's side of the per-user limits kept by the primary: the user table the primary sent
// (replaced on every reload) and admission as an IPC round trip. No answer in time is a refusal
// ('no-answer': fail closed), counted and logged once a minute; an admission that the primary
// granted after the worker gave up is given back at once.

import type { Logger } from '../log/logger.js';
import { throttled } from '../log/throttle.js';
import type { WorkerIpc } from '../process/worker.js';
import type { UserRefusal } from '../session/events.js';
import type { UserTable } from '../session/ports.js';
import { type UserDirectory, UserGate, type UserGateCounters } from './user-gate.js';
import {
  ADMIT,
  ADMIT_ANSWER,
  type AdmitAnswer,
  type AdmitRequest,
  RELEASE,
  type ReleaseNotice,
  USERS,
  type WireUser,
} from './user-messages.js';

export const ANSWER_TIMEOUT_MS = 2000;
const LOG_EVERY_MS = 60_000;
/** Admissions given up on and still remembered, to give back a late grant; the oldest go first. */
const MAX_ABANDONED = 65_536;

export class SharedUsers implements UserDirectory {
  #table: UserTable = { secrets: [], names: [] };
  #limited = new Set<string>();
  #adTags = new Map<string, Buffer>();
  readonly #pending = new Map<number, (refusal: UserRefusal | undefined) => void>();
  readonly #send: (msg: AdmitRequest | ReleaseNotice) => void;
  readonly #report: (unanswered: number) => void;
  readonly #timeoutMs: number;
  readonly #abandoned = new Map<number, { user: string; ip: string }>();
  #nextId = 1;
  #unanswered = 0;

  constructor(
    users: readonly WireUser[],
    send: (msg: AdmitRequest | ReleaseNotice) => void,
    log?: Logger,
    timeoutMs = ANSWER_TIMEOUT_MS,
  ) {
    this.#send = send;
    this.#timeoutMs = timeoutMs;
    this.#report = throttled(LOG_EVERY_MS, (unanswered: number) =>
      log?.error('admissions unanswered by the primary; refusing those clients of limited users', {
        unanswered,
        timeoutMs,
      }),
    );
    this.replace(users);
  }

  /** Admissions that got no answer in time, since start. */
  get unanswered(): number {
    return this.#unanswered;
  }

  replace(users: readonly WireUser[]): void {
    this.#table = {
      secrets: users.map((u) => Buffer.from(u.secretHex, 'hex')),
      names: users.map((u) => u.name),
    };
    this.#limited = new Set(users.filter((u) => u.limited).map((u) => u.name));
    this.#adTags = new Map(
      users.filter((u) => u.adTagHex !== undefined).map((u) => [u.name, Buffer.from(u.adTagHex!, 'hex')]),
    );
  }

  table(): UserTable {
    return this.#table;
  }

  /** The user's own advertising tag (users file), if any. */
  adTag(user: string): Buffer | undefined {
    return this.#adTags.get(user);
  }

  limited(user: string): boolean {
    return this.#limited.has(user);
  }

  admit(user: string, ip: string): Promise<UserRefusal | undefined> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        this.#abandon(id, user, ip);
        resolve('no-answer');
      }, this.#timeoutMs);
      this.#pending.set(id, (refusal) => {
        clearTimeout(timer);
        resolve(refusal);
      });
      this.#send({ type: 'admit', id, user, ip });
    });
  }

  answer(msg: AdmitAnswer): void {
    const resolve = this.#pending.get(msg.id);
    this.#pending.delete(msg.id);
    if (resolve !== undefined) {
      resolve(msg.refusal);
      return;
    }
    const late = this.#abandoned.get(msg.id);
    this.#abandoned.delete(msg.id);
    if (late !== undefined && msg.refusal === undefined) this.release(late.user, late.ip);
  }

  #abandon(id: number, user: string, ip: string): void {
    this.#abandoned.set(id, { user, ip });
    if (this.#abandoned.size > MAX_ABANDONED) {
      const oldest = this.#abandoned.keys().next().value;
      if (oldest !== undefined) this.#abandoned.delete(oldest);
    }
    this.#unanswered++;
    this.#report(this.#unanswered);
  }

  release(user: string, ip: string): void {
    this.#send({ type: 'release', user, ip });
  }
}

/**
 * A worker's users: the table the primary sent at start, replaced by each 'users' message (new
 * connections use the new table at once; connections of revoked users are closed), and the gate
 * that asks the primary to admit limited users.
 */
export function usersOverIpc(
  ipc: WorkerIpc,
  initial: readonly WireUser[],
  counters: UserGateCounters,
  log: Logger,
): { readonly users: SharedUsers; readonly gate: UserGate } {
  const users = new SharedUsers(
    initial,
    (msg) => (msg.type === 'admit' ? ipc.send(ADMIT, msg) : ipc.send(RELEASE, msg)),
    log,
  );
  const gate = new UserGate(users, counters);
  ipc.on(ADMIT_ANSWER, (msg) => users.answer(msg));
  ipc.on(USERS, (msg) => {
    users.replace(msg.users);
    gate.revoke(msg.revoke);
  });
  return { users, gate };
}
