// What happens to a client connection, told to whoever counts it (stats, metrics, logs).
// The relay only reports; it never knows who is listening.
import type { Transport } from '../protocol/obfuscated2.js';

export type HandshakeFailure =
  | 'bad-secret'
  | 'replay'
  | 'timeout'
  | 'transport-not-allowed'
  | 'unknown-dc'
  | 'client-closed';

export type CloseReason =
  | 'client-closed'
  | 'upstream-closed'
  | 'client-error'
  | 'upstream-error'
  | 'idle'
  | 'handshake-failed'
  | 'upstream-unreachable'
  | 'shutdown';

export interface SessionObserver {
  handshakeOk(secretIndex: number, transport: Transport, dc: number): void;
  handshakeFailed(reason: HandshakeFailure): void;
  upstreamConnected(dc: number): void;
  upstreamFailed(dc: number): void;
  /** Bytes counted as they pass, both directions, per secret. */
  relayed(secretIndex: number, fromClient: number, toClient: number): void;
  closed(reason: CloseReason, established: boolean): void;
}

export const NULL_OBSERVER: SessionObserver = {
  handshakeOk() {},
  handshakeFailed() {},
  upstreamConnected() {},
  upstreamFailed() {},
  relayed() {},
  closed() {},
};
