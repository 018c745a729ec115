// Middle-proxy mode as an Upstream (session/ports.ts): an authenticated client is bound to a middle-end
// connection of its DC's cluster, and its packets travel as RPC_PROXY_REQ (client-relay.ts).
// This file is only the glue between the session's socket and that per-client machinery.
// One object per client and no closures: its listeners are shared (session/socket-owner.ts).

import type { Cipheriv } from 'node:crypto';
import type { Socket } from 'node:net';
import { ctrCipher } from '../protocol/obfuscated2.js';
import type { CloseReason } from '../session/events.js';
import type { ClientLink, SessionHooks, Upstream } from '../session/ports.js';
import { SocketOwner } from '../session/socket-owner.js';
import type { BacklogBudget } from './backlog-budget.js';
import { type ClientSink, MiddleUpstream, type MiddleUpstreamCloseReason } from './client-relay.js';
import { targetsForDc } from './codec/proxy-config.js';
import { natClientAddress } from './connection.js';
import type { MiddleObserver } from './events.js';
import type { MiddleProxyPool } from './pool.js';

export interface MiddleAdapterDeps {
  readonly pool: MiddleProxyPool;
  readonly externalIp: string | undefined;
  /** The ad tag for this user: its own from the users file, else TAG. */
  readonly adTag: (user: string) => Buffer | undefined;
  readonly observer: MiddleObserver;
  readonly acquireTimeoutMs: number;
  /** Answers queued for one client that does not read them before it is closed. */
  readonly maxClientBacklog?: number;
  readonly budget?: BacklogBudget;
}

const CLOSE_REASONS: Record<MiddleUpstreamCloseReason, CloseReason> = {
  'middle-closed': 'upstream-closed',
  'middle-lost': 'upstream-error',
  'bad-answer': 'upstream-error',
  'client-protocol': 'client-error',
  flood: 'client-error',
};

const CORK_BELOW = 4096;

export function middleUpstream(deps: MiddleAdapterDeps): Upstream {
  return {
    canServe: (dc) => targetsForDc(deps.pool.config, dc) !== undefined,
    start: (link, session) => {
      void openMiddle(deps, link, session);
    },
  };
}

async function openMiddle(deps: MiddleAdapterDeps, link: ClientLink, session: SessionHooks): Promise<void> {
  const { header, peer } = link;
  const client = new MiddleClient(link, session);
  let upstream: MiddleUpstream;
  try {
    upstream = await MiddleUpstream.open({
      pool: deps.pool,
      dc: header.dc,
      transport: header.transport,
      client: { ip: peer.address, port: peer.port },
      // The official proxy reports the address clients dialled, NAT-translated (§6.8).
      proxy: natClientAddress({ ip: peer.localAddress, port: peer.localPort }, deps.externalIp),
      adTag: deps.adTag(link.user),
      random: session.random,
      observer: deps.observer,
      acquireTimeoutMs: deps.acquireTimeoutMs,
      maxBacklogBytes: deps.maxClientBacklog,
      budget: deps.budget,
      signal: session.signal,
      sink: client,
    });
  } catch {
    if (!session.ended) {
      session.observer.upstreamFailed(header.dc);
      session.finish('upstream-unreachable');
    }
    return;
  }
  if (session.ended) {
    upstream.close();
    return;
  }
  session.observer.upstreamConnected(header.dc);
  session.established();
  client.start(upstream, link.rest);
}

const CLIENT = new SocketOwner<MiddleClient>('middle client');

/** The client's socket as middle mode sees it: decrypts what it sends, encrypts what it gets. */
class MiddleClient implements ClientSink {
  readonly #socket: Socket;
  readonly #decrypt: Cipheriv;
  /** Made here, once: the session's header holds only its key. */
  readonly #encrypt: Cipheriv;
  readonly #unwrap: ClientLink['unwrap'];
  readonly #wrap: ClientLink['wrap'];
  readonly #user: string;
  readonly #session: SessionHooks;
  #upstream: MiddleUpstream | undefined;
  #corked = false;

  /** Takes from `link` only what relaying needs, so nothing else of the handshake stays reachable. */
  constructor(link: ClientLink, session: SessionHooks) {
    this.#socket = link.socket;
    this.#decrypt = link.header.decryptor;
    this.#encrypt = ctrCipher(link.header.encrypt);
    this.#unwrap = link.unwrap;
    this.#wrap = link.wrap;
    this.#user = link.user;
    this.#session = session;
  }

  /** Bound and established: read the client, starting with what came after its header. */
  start(upstream: MiddleUpstream, rest: Buffer): void {
    this.#upstream = upstream;
    const socket = this.#socket;
    CLIENT.own(socket, this);
    socket.on('data', onClientData);
    socket.on('drain', onClientDrain);
    // The session ends by destroying the socket: the middle-end hears of it (RPC_CLOSE_CONN).
    socket.on('close', onClientClose);
    this.#feed(rest);
    if (!upstream.closed) socket.resume();
  }

  write(chunks: readonly Buffer[]): boolean {
    const plain = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    this.#session.observer.relayed(this.#user, 0, plain.length);
    // Small answers of one middle-proxy read leave in one writev, not one write each. Large ones
    // go at once: corked, they would fill the socket's buffer and pause the client.
    if (!this.#corked && plain.length < CORK_BELOW) {
      this.#corked = true;
      this.#socket.cork();
      process.nextTick(uncork, this);
    }
    return this.#socket.write(this.#wrap(this.#encrypt.update(plain)));
  }

  get backlog(): number {
    return this.#socket.writableLength;
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  close(reason: MiddleUpstreamCloseReason): void {
    this.#session.finish(CLOSE_REASONS[reason]);
  }

  uncork(): void {
    this.#corked = false;
    this.#socket.uncork();
  }

  fromClient(chunk: Buffer): void {
    let data: Buffer;
    try {
      data = this.#unwrap(chunk);
    } catch {
      this.#session.finish('client-error');
      return;
    }
    this.#feed(data);
  }

  #feed(data: Buffer): void {
    if (data.length === 0) return;
    this.#session.observer.relayed(this.#user, data.length, 0);
    this.#upstream!.fromClient(this.#decrypt.update(data));
  }

  drained(): void {
    this.#upstream!.clientDrained();
  }

  closed(): void {
    this.#upstream!.close();
  }
}

function uncork(client: MiddleClient): void {
  client.uncork();
}

const onClientData = CLIENT.listener((client, chunk: Buffer) => client.fromClient(chunk));
const onClientDrain = CLIENT.listener((client) => client.drained());
const onClientClose = CLIENT.listener((client) => client.closed());
