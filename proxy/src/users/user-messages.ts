// What the primary and the workers say about users: the user table the primary pushes, and
// admission of a limited user as a round trip (admit, answer, release when the client leaves).
import { isString, messageKind } from '../process/ipc.js';
import type { UserRefusal } from '../session/events.js';

/** A user as sent to workers: the name, the secret, and whether the primary must admit it. */
export interface WireUser {
  readonly name: string;
  readonly secretHex: string;
  readonly limited: boolean;
  /** Middle-proxy mode: this user's own advertising tag instead of TAG. */
  readonly adTagHex?: string | undefined;
}

/** The user table in force, and the users whose open connections must close. */
export interface UsersMessage {
  readonly type: 'users';
  readonly users: readonly WireUser[];
  readonly revoke: readonly string[];
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

export const USERS = messageKind<UsersMessage>(
  'users',
  (m) => Array.isArray(m.users) && Array.isArray(m.revoke),
);
export const ADMIT = messageKind<AdmitRequest>(
  'admit',
  (m) => typeof m.id === 'number' && isString(m.user) && isString(m.ip),
);
export const ADMIT_ANSWER = messageKind<AdmitAnswer>('admit-answer', (m) => typeof m.id === 'number');
export const RELEASE = messageKind<ReleaseNotice>('release', (m) => isString(m.user) && isString(m.ip));
