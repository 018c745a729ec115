// Per-user limits at the hand-over from handshake to upstream: a user with limits is admitted by
// the primary (pod-wide counts) before its traffic goes anywhere; every admitted connection is
// tracked so that a reload or a used-up quota can close it.

import type { UserRefusal } from '../session/events.js';
import type { SessionHooks, Upstream, UserTable } from '../session/ports.js';

export interface UserDirectory {
  table(): UserTable;
  /** Whether `user` has limits the primary must check; users without any skip the round trip. */
  limited(user: string): boolean;
  admit(user: string, ip: string): Promise<UserRefusal | undefined>;
  release(user: string, ip: string): void;
}

export interface UserGateCounters {
  userRefused(user: string, reason: UserRefusal): void;
  userCurrent(user: string, delta: 1 | -1): void;
}

export class UserGate {
  readonly #open = new Map<string, Set<SessionHooks>>();
  readonly #directory: UserDirectory;
  readonly #counters: UserGateCounters;

  constructor(directory: UserDirectory, counters: UserGateCounters) {
    this.#directory = directory;
    this.#counters = counters;
  }

  /** Wraps `inner` so that every client passes its user's limits first. */
  wrap(inner: Upstream): Upstream {
    return {
      canServe: (dc) => inner.canServe(dc),
      start: (link, session) => {
        const { user } = link;
        const ip = link.peer.address;
        if (!this.#directory.limited(user)) {
          this.#track(user, session, undefined);
          inner.start(link, session);
          return;
        }
        void this.#directory.admit(user, ip).then((refusal) => {
          if (refusal !== undefined) {
            this.#counters.userRefused(user, refusal);
            session.finish('refused');
            return;
          }
          if (session.ended) {
            this.#directory.release(user, ip);
            return;
          }
          this.#track(user, session, ip);
          inner.start(link, session);
        });
      },
    };
  }

  /** Closes every open connection of these users (removed, disabled, over quota). */
  revoke(users: readonly string[]): number {
    let closed = 0;
    for (const user of users) {
      for (const session of this.#open.get(user) ?? []) {
        session.finish('user-revoked');
        closed++;
      }
    }
    return closed;
  }

  #track(user: string, session: SessionHooks, admittedIp: string | undefined): void {
    let set = this.#open.get(user);
    if (!set) {
      set = new Set();
      this.#open.set(user, set);
    }
    set.add(session);
    this.#counters.userCurrent(user, 1);
    session.onEnd(() => {
      set.delete(session);
      if (set.size === 0) this.#open.delete(user);
      this.#counters.userCurrent(user, -1);
      if (admittedIp !== undefined) this.#directory.release(user, admittedIp);
    });
  }
}
