// One client connection's life in direct mode: read and check the obfuscated2 header, dial the DC
// the client asked for, then relay both ways until either side goes away or falls silent.
import type { Socket } from 'node:net';
import type { HostPort } from '../config/config.js';
import {
  type ClientHeader,
  createDcHeader,
  HEADER_LEN,
  parseClientHeader,
  type RandomSource,
  type Transport,
} from '../protocol/obfuscated2.js';
import type { ReplayGuard } from '../server/replay-cache.js';
import { dial } from '../upstream/dialer.js';
import type { CloseReason, HandshakeFailure, SessionObserver } from './events.js';
import { pump } from './pump.js';

export interface SessionDeps {
  /** Read at each handshake, so a reload applies to new connections only. */
  readonly secrets: () => readonly Buffer[];
  readonly allowedTransports: ReadonlySet<Transport>;
  readonly replay: ReplayGuard;
  readonly resolveDc: (dc: number) => readonly HostPort[] | undefined;
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly random: RandomSource;
  readonly observer: SessionObserver;
}

/** Handles `client` until it closes; never throws, whatever the client sends. */
export function serveClient(client: Socket, deps: SessionDeps): void {
  new ClientSession(client, deps).start();
}

class ClientSession {
  readonly #client: Socket;
  readonly #deps: SessionDeps;
  readonly #abort = new AbortController();
  #upstream: Socket | undefined;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #established = false;
  #finished = false;
  #failure: HandshakeFailure | undefined;
  #errorSide: 'client' | 'upstream' | undefined;

  constructor(client: Socket, deps: SessionDeps) {
    this.#client = client;
    this.#deps = deps;
  }

  start(): void {
    const client = this.#client;
    client.setNoDelay(true);
    client.on('error', () => {
      this.#errorSide ??= 'client';
    });
    client.on('close', () => this.#finish(this.#errorSide === 'client' ? 'client-error' : 'client-closed'));
    this.#handshakeTimer = setTimeout(() => this.#failHandshake('timeout'), this.#deps.handshakeTimeoutMs);
    client.on('data', this.#onHandshakeData);
  }

  readonly #onHandshakeData = (chunk: Buffer): void => {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    if (this.#pendingBytes < HEADER_LEN) return;
    this.#client.off('data', this.#onHandshakeData);
    this.#client.pause();
    const received = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
    this.#pending = [];
    this.#onHeader(received.subarray(0, HEADER_LEN), received.subarray(HEADER_LEN));
  };

  #onHeader(header: Buffer, rest: Buffer): void {
    const deps = this.#deps;
    const parsed = parseClientHeader(header, deps.secrets());
    if (parsed === undefined) {
      this.#badClient('bad-secret');
      return;
    }
    if (!deps.allowedTransports.has(parsed.transport)) {
      this.#badClient('transport-not-allowed');
      return;
    }
    const targets = deps.resolveDc(parsed.dc);
    if (targets === undefined) {
      this.#failHandshake('unknown-dc');
      return;
    }
    void Promise.resolve(deps.replay.seen(parsed.replayKey)).then((replayed) => {
      if (this.#finished) return;
      if (replayed) {
        this.#badClient('replay');
        return;
      }
      deps.observer.handshakeOk(parsed.secretIndex, parsed.transport, parsed.dc);
      void this.#connect(parsed, targets, rest);
    });
  }

  async #connect(header: ClientHeader, targets: readonly HostPort[], rest: Buffer): Promise<void> {
    const deps = this.#deps;
    let upstream: Socket;
    try {
      upstream = await dial(targets, deps.connectTimeoutMs, this.#abort.signal);
    } catch {
      if (!this.#finished) deps.observer.upstreamFailed(header.dc);
      return this.#finish('upstream-unreachable');
    }
    if (this.#finished) {
      upstream.destroy();
      return;
    }
    deps.observer.upstreamConnected(header.dc);
    this.#upstream = upstream;
    this.#established = true;
    clearTimeout(this.#handshakeTimer);
    upstream.on('error', () => {
      this.#errorSide ??= 'upstream';
    });
    upstream.on('close', () =>
      this.#finish(this.#errorSide === 'upstream' ? 'upstream-error' : 'upstream-closed'),
    );
    this.#client.setTimeout(deps.idleTimeoutMs, () => this.#finish('idle'));

    // Fast mode: the DC is told to answer with the client's own key stream, so its bytes go to
    // the client untouched; only client -> DC bytes are decrypted and encrypted again.
    const dcHeader = createDcHeader(deps.random, header.transport, header.encrypt);
    const decrypt = header.decryptor;
    const encrypt = dcHeader.encryptor;
    const secret = header.secretIndex;
    const observer = deps.observer;
    upstream.write(
      rest.length > 0 ? Buffer.concat([dcHeader.wire, encrypt.update(decrypt.update(rest))]) : dcHeader.wire,
    );
    if (rest.length > 0) observer.relayed(secret, rest.length, 0);
    pump(
      this.#client,
      upstream,
      (chunk) => {
        observer.relayed(secret, chunk.length, 0);
        return encrypt.update(decrypt.update(chunk));
      },
      (chunk) => {
        observer.relayed(secret, 0, chunk.length);
        return chunk;
      },
    );
  }

  /**
   * A client that is not one of ours: say nothing, read and discard until the handshake deadline,
   * then close. Answering fast, or differently from a silent server, would tell a prober what we are.
   */
  #badClient(reason: HandshakeFailure): void {
    this.#failure = reason;
    this.#deps.observer.handshakeFailed(reason);
    this.#client.on('data', () => {});
    this.#client.resume();
  }

  #failHandshake(reason: HandshakeFailure): void {
    if (this.#finished || this.#established) return;
    if (this.#failure === undefined) {
      this.#failure = reason;
      this.#deps.observer.handshakeFailed(reason);
    }
    this.#finish('handshake-failed');
  }

  #finish(reason: CloseReason): void {
    if (this.#finished) return;
    if (!this.#established && this.#failure === undefined && reason === 'client-closed') {
      this.#failure = 'client-closed';
      this.#deps.observer.handshakeFailed('client-closed');
    }
    this.#finished = true;
    clearTimeout(this.#handshakeTimer);
    this.#abort.abort();
    this.#client.destroy();
    this.#upstream?.destroy();
    this.#deps.observer.closed(this.#established ? reason : 'handshake-failed', this.#established);
  }
}
