// The seam between a client's handshake and where its traffic goes. The session (client-session.ts)
// authenticates the client, with or without fake TLS, and hands over a ClientLink; an Upstream
// (direct/direct-upstream.ts: straight to a DC; a middle-proxy upstream next to it) takes it from there.
import type { Socket } from 'node:net';
import type { ClientHeader, RandomSource } from '../protocol/obfuscated2.js';
import type { CloseReason, Framing, SessionObserver } from './events.js';

/** The client as the proxy knows it: the real address, after a PROXY protocol header if any. */
export interface PeerAddress {
  readonly address: string;
  readonly port: number;
  /** The address and port the client connected to (PROXY header destination, else our socket's). */
  readonly localAddress: string;
  readonly localPort: number;
}

/** An authenticated client whose obfuscated2 header was read; nothing was sent to it yet but TLS. */
export interface ClientLink {
  readonly socket: Socket;
  /** Secret, transport, DC; `header.decryptor` has consumed the 64 header bytes. */
  readonly header: ClientHeader;
  readonly framing: Framing;
  /**
   * The client's wire bytes -> its obfuscated2 (still encrypted) bytes: strips TLS records in fake
   * TLS, identity otherwise. Throws ProtocolError on bytes that are not records.
   */
  readonly unwrap: (chunk: Buffer) => Buffer;
  /** Obfuscated2 bytes for the client (already encrypted) -> wire bytes: TLS records or identity. */
  readonly wrap: (chunk: Buffer) => Buffer;
  /** Obfuscated2 bytes the client sent after its header (unwrapped, still encrypted). */
  readonly rest: Buffer;
  readonly peer: PeerAddress;
  /** The user whose secret matched. */
  readonly user: string;
}

/** What an upstream may do with the session it serves. */
export interface SessionHooks {
  /** Aborted when the session is over (client gone, deadline): stop dialling, let go. */
  readonly signal: AbortSignal;
  readonly observer: SessionObserver;
  readonly random: RandomSource;
  /**
   * Traffic can flow: ends the handshake deadline and starts the idle timeout. With `upstream`,
   * the session also closes when that socket does and destroys it when the session ends.
   */
  established(upstream?: Socket): void;
  /** Ends the session (both sockets), counting `reason`. */
  finish(reason: CloseReason): void;
}

export interface Upstream {
  /** Whether this upstream can reach `dc`; asked before the client is accepted. */
  canServe(dc: number): boolean;
  /** Takes over an authenticated client. Never throws. */
  start(link: ClientLink, session: SessionHooks): void;
}
