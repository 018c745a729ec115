// What the primary and the workers say about users: the user table the primary pushes, and
// admission of a limited user as a round trip (admit, answer, release when the client leaves).
import { field, type MessageOf, messageKind } from '../process/ipc.js';
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
export const USERS = messageKind('users', { users: field.list<WireUser>(), revoke: field.list<string>() });
export const ADMIT = messageKind('admit', { id: field.number, user: field.string, ip: field.string });
/** No refusal: admitted. */
export const ADMIT_ANSWER = messageKind('admit-answer', {
  id: field.number,
  refusal: field.any<UserRefusal | undefined>(),
});
export const RELEASE = messageKind('release', { user: field.string, ip: field.string });

export type AdmitRequest = MessageOf<typeof ADMIT>;
export type AdmitAnswer = MessageOf<typeof ADMIT_ANSWER>;
export type ReleaseNotice = MessageOf<typeof RELEASE>;
