// The ports of the session core: every interface a client connection needs from the rest of the
// proxy, declared here by the code that uses them, so that features (direct/, middle/, replay/,
// admission/, masking/, users/) import the session and never the other way round.
//
// The seam after the handshake: the session (client-session.ts) authenticates the client, with or
// without fake TLS, and hands over a ClientLink; an Upstream (direct/direct-upstream.ts: straight to
// a DC; middle/middle-upstream.ts through Telegram's middle proxies) takes it from there.
// Time and randomness come in as plain functions: FakeTlsPolicy.now (policy.ts) is the clock the
// hello's timestamp is checked against, and RandomSource (protocol/obfuscated2.ts) draws every
// random byte of the answer and every random delay, so tests can pin both.
import type { Socket } from 'node:net';
import type { ClientHeader, RandomSource } from '../protocol/obfuscated2.js';
import type { CloseReason, Framing, MaskFailure, SessionObserver } from './events.js';

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
  /**
   * Aborted when the session is over (client gone, deadline): for the wait before `established`
   * (dialling, binding). A relayed connection keeps no AbortController; use `onEnd` for its life.
   */
  readonly signal: AbortSignal;
  /** Whether the session is over. */
  readonly ended: boolean;
  /** Calls `listener` once when the session ends (at once if it has ended). */
  onEnd(listener: () => void): void;
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

/** The secrets a handshake may match, and the name of each (same order). */
export interface UserTable {
  readonly secrets: readonly Buffer[];
  readonly names: readonly string[];
}

/** 'fresh' lets the handshake through; anything else refuses it like a replay (fail closed). */
export type ReplayOutcome = 'fresh' | 'replay' | 'full' | 'no-answer';

/** The replay cache as the session asks it (replay/: one cache in the primary for all workers). */
export interface ReplayGuard {
  /** Remembers the replay key of an authenticated handshake, or says why it must be refused. */
  check(key: Buffer): ReplayOutcome | Promise<ReplayOutcome>;
}

/** Relays a failed connection to the mask host (masking/mask-relay.ts). */
export interface MaskRelay {
  /**
   * Takes over `client` (paused, no 'data' listener) and sends `replay` (what it sent so far)
   * first. Resolves once relaying started, or with the reason it could not: then the client is
   * still the caller's.
   */
  relay(client: Socket, replay: readonly Buffer[]): Promise<'relaying' | MaskFailure>;
}

export type TrialPlan =
  /** Try every secret, `first` (the last match from this host) before the others. */
  | { readonly kind: 'full'; readonly first: number | undefined }
  /** Budget spent: try only the last match from this host, or nothing. */
  | { readonly kind: 'remembered-only'; readonly first: number | undefined };

/**
 * Per-source budget of failed handshakes, asked before any crypto (admission/handshake-throttle.ts):
 * a flooder without a secret must not make a worker try every secret on every connection.
 */
export interface TrialThrottle {
  /** What to try for a handshake from `address`. */
  plan(address: string): TrialPlan;
  /** A handshake from `address` matched secret `index`. */
  matched(address: string, index: number): void;
  /** A handshake from `address` matched no secret on a full trial. */
  failed(address: string): void;
}

/**
 * A bound on a worker's handshakes not identified yet: past it the oldest one is told to give up,
 * so silent or trickling connections cannot crowd out fast clients.
 */
export interface UnidentifiedCap {
  /** Registers a handshake; `evict` is called if it must give up. Returns the call that unregisters it. */
  enter(evict: () => void): () => void;
}
