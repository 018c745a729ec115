// What happens to a client connection, told to whoever counts it (stats, metrics, logs).
// The relay only reports; it never knows who is listening.
import type { Transport } from '../protocol/obfuscated2.js';

export type HandshakeFailure =
  /** Plain obfuscated2 header that no secret opens. */
  | 'bad-secret'
  /** A handshake (obfuscated2 header or fake-TLS random) seen before. */
  | 'replay'
  /** Refused because the replay cache is full of younger handshakes (fail closed). */
  | 'replay-cache-full'
  /** Refused because the replay check got no answer in time (fail closed). */
  | 'replay-unanswered'
  | 'timeout'
  /** A transport or mode that MODES does not allow (e.g. plain obfuscated2 with MODES=tls). */
  | 'transport-not-allowed'
  | 'unknown-dc'
  | 'client-closed'
  /** MODES is tls only and the connection did not open with a TLS ClientHello. */
  | 'not-tls'
  | 'tls-malformed'
  | 'tls-bad-mac'
  | 'tls-clock-skew'
  | 'tls-bad-sni'
  | 'tls-bad-cipher-suite'
  /** After our ServerHello: not the ChangeCipherSpec + application-data records of §4.8. */
  | 'tls-bad-records'
  /** More bytes than any handshake needs arrived before a decision (MAX_HANDSHAKE_BUFFER). */
  | 'oversized'
  /**
   * Not tried against the secrets: its source spent its budget of failed handshakes, or it was
   * the oldest of too many unidentified handshakes (admission/handshake-throttle.ts).
   */
  | 'throttled';

/** Connections turned away before any handshake; the values are metric labels. */
export type RefusalReason = 'max_connections' | 'per_ip_limit' | 'bad_proxy_header';

/** `busy`: MASK_MAX_RELAYS masked relays were already open in this worker. */
export type MaskFailure = 'self' | 'unreachable' | 'busy';

export type CloseReason =
  | 'client-closed'
  | 'upstream-closed'
  | 'client-error'
  | 'upstream-error'
  | 'idle'
  | 'handshake-failed'
  | 'upstream-unreachable'
  | 'shutdown'
  /** Failed the handshake and was relayed to the mask host until one side closed or a cap hit. */
  | 'masked'
  /** Turned away before the handshake (see RefusalReason), or by its user's limits. */
  | 'refused'
  /** Its user was removed, disabled or went over quota while it was connected. */
  | 'user-revoked';

export type Framing = 'plain' | 'tls';

/** Why a user's own limits turned a connection away (users file, USERS_FILE). */
export type UserRefusal =
  | 'unknown-user'
  | 'disabled'
  | 'expired'
  | 'max-connections'
  | 'max-unique-ips'
  | 'quota'
  /** The primary (or the shared store) gave no answer in time: refused, fail closed. */
  | 'no-answer';

export interface SessionObserver {
  /** `user` is the name of the secret that matched (secret1, secret2, ... or a users-file name). */
  handshakeOk(user: string, transport: Transport, dc: number, framing: Framing): void;
  /** An authenticated user turned away by its own limits. */
  userRefused(user: string, reason: UserRefusal): void;
  handshakeFailed(reason: HandshakeFailure): void;
  refused(reason: RefusalReason): void;
  /** A failed connection was handed to the mask host. */
  masked(): void;
  /** A failed connection should have been masked but could not be (then it is held and closed). */
  maskFailed(reason: MaskFailure): void;
  upstreamConnected(dc: number): void;
  upstreamFailed(dc: number): void;
  /** Bytes counted as they pass, both directions, per user. */
  relayed(user: string, fromClient: number, toClient: number): void;
  closed(reason: CloseReason, established: boolean): void;
}
