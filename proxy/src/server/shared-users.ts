// The worker's side of the per-user limits kept by the primary: the user table the primary sent
// (replaced on every reload) and admission as an IPC round trip.
import type { UserTable } from '../relay/client-session.js';
import type { UserRefusal } from '../relay/events.js';
import type { UserDirectory } from '../relay/user-gate.js';

/** A user as sent to workers: the name, the secret, and whether the primary must admit it. */
export interface WireUser {
  readonly name: string;
  readonly secretHex: string;
  readonly limited: boolean;
  /** Middle-proxy mode: this user's own advertising tag instead of TAG. */
  readonly adTagHex?: string | undefined;
}

export interface AdmitRequest {
  readonly type: 'admit';
  readonly id: number;
  readonly user: string;
  readonly ip: string;
}

export interface AdmitAnswer {
  readonly type: 'admit-answer';
  readonly id: number;
  readonly refusal: UserRefusal | undefined;
}

export interface ReleaseNotice {
  readonly type: 'release';
  readonly user: string;
  readonly ip: string;
}

/** If the primary does not answer in time, let the client in: availability beats a lost check. */
const ANSWER_TIMEOUT_MS = 2000;

export class SharedUsers implements UserDirectory {
  #table: UserTable = { secrets: [], names: [] };
  #limited = new Set<string>();
  #adTags = new Map<string, Buffer>();
  readonly #pending = new Map<number, (refusal: UserRefusal | undefined) => void>();
  readonly #send: (msg: AdmitRequest | ReleaseNotice) => void;
  #nextId = 1;

  constructor(users: readonly WireUser[], send: (msg: AdmitRequest | ReleaseNotice) => void) {
    this.#send = send;
    this.replace(users);
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
        resolve(undefined);
      }, ANSWER_TIMEOUT_MS);
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
    resolve?.(msg.refusal);
  }

  release(user: string, ip: string): void {
    this.#send({ type: 'release', user, ip });
  }
}
