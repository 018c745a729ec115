// The primary's side of per-user limits over IPC: admissions asked by workers, the places each
// worker holds (given back when it dies), and the per-user bytes every worker's counters carry.
import type { PrimaryIpc, WorkerLink } from '../process/primary.js';
import type { UserRefusal } from '../session/events.js';
import type { CounterSnapshot } from '../telemetry/counters.js';
import { COUNTERS } from '../telemetry/worker-totals.js';
import { ADMIT, ADMIT_ANSWER, RELEASE, USERS, type WireUser } from './user-messages.js';

/** What the admissions need from the users service (users-service.ts). */
export interface PrimaryUsers {
  admit(user: string, ip: string): UserRefusal | undefined | Promise<UserRefusal | undefined>;
  release(user: string, ip: string): void;
  countBytes(workerId: number, perUser: CounterSnapshot['perUser']): void;
  workerGone(workerId: number): void;
}

const admissionKey = (user: string, ip: string): string => `${user}\u0000${ip}`;

/** Answers the workers' admissions and counts their users' bytes. */
export function serveAdmissions(ipc: PrimaryIpc, users: PrimaryUsers): void {
  /** Admissions each worker holds, so that a worker's death gives its users' places back. */
  const admitted = new Map<WorkerLink, Map<string, number>>();

  ipc.on(ADMIT, (msg, worker) => {
    const answer = (refusal: UserRefusal | undefined): void => {
      if (refusal === undefined) {
        if (!worker.alive) {
          // The worker died while the store was asked: nobody will release this one.
          users.release(msg.user, msg.ip);
          return;
        }
        const held = admitted.get(worker) ?? new Map<string, number>();
        admitted.set(worker, held);
        const key = admissionKey(msg.user, msg.ip);
        held.set(key, (held.get(key) ?? 0) + 1);
      }
      worker.send(ADMIT_ANSWER, { type: 'admit-answer', id: msg.id, refusal });
    };
    const refusal = users.admit(msg.user, msg.ip);
    if (refusal instanceof Promise) return refusal.then(answer);
    answer(refusal);
  });

  ipc.on(RELEASE, (msg, worker) => {
    const held = admitted.get(worker);
    const key = admissionKey(msg.user, msg.ip);
    const n = held?.get(key) ?? 0;
    if (n === 0) return;
    if (n === 1) held!.delete(key);
    else held!.set(key, n - 1);
    users.release(msg.user, msg.ip);
  });

  ipc.on(COUNTERS, (msg, worker) => users.countBytes(worker.id, msg.counters.perUser));

  ipc.onWorkerExit((worker) => {
    for (const [key, n] of admitted.get(worker) ?? []) {
      const [user, ip] = key.split('\u0000') as [string, string];
      for (let i = 0; i < n; i++) users.release(user, ip);
    }
    admitted.delete(worker);
    users.workerGone(worker.id);
  });
}

/** Sends a new user table to every worker, closing the connections of the users in `revoke`. */
export function publishUsers(ipc: PrimaryIpc, users: readonly WireUser[], revoke: readonly string[]): void {
  ipc.broadcast(USERS, { type: 'users', users, revoke });
}
