// Middle-proxy mode as an Upstream (session/ports.ts): an authenticated client is bound to a middle-end
// connection of its DC's cluster, and its packets travel as RPC_PROXY_REQ (client-relay.ts).
// This file is only the glue between the session's socket and that per-client machinery.

import { ctrCipher } from '../protocol/obfuscated2.js';
import type { CloseReason } from '../session/events.js';
import type { ClientLink, SessionHooks, Upstream } from '../session/ports.js';
import type { BacklogBudget } from './backlog-budget.js';
import { MiddleUpstream, type MiddleUpstreamCloseReason } from './client-relay.js';
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
  const { header, socket: client, peer, user } = link;
  const { observer } = session;
  const encrypt = ctrCipher(header.encrypt);
  const decrypt = header.decryptor;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    client.uncork();
  };
  let upstream: MiddleUpstream;
  try {
    upstream = await MiddleUpstream.open({
      pool: deps.pool,
      dc: header.dc,
      transport: header.transport,
      client: { ip: peer.address, port: peer.port },
      // The official proxy reports the address clients dialled, NAT-translated (§6.8).
      proxy: natClientAddress({ ip: peer.localAddress, port: peer.localPort }, deps.externalIp),
      adTag: deps.adTag(user),
      random: session.random,
      observer: deps.observer,
      acquireTimeoutMs: deps.acquireTimeoutMs,
      maxBacklogBytes: deps.maxClientBacklog,
      budget: deps.budget,
      signal: session.signal,
      sink: {
        write: (chunks) => {
          const plain = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
          observer.relayed(user, 0, plain.length);
          // Small answers of one middle-proxy read leave in one writev, not one write each. Large
          // ones go at once: corked, they would fill the socket's buffer and pause the client.
          if (!corked && plain.length < CORK_BELOW) {
            corked = true;
            client.cork();
            process.nextTick(uncork);
          }
          return client.write(link.wrap(encrypt.update(plain)));
        },
        get backlog() {
          return client.writableLength;
        },
        pause: () => client.pause(),
        resume: () => client.resume(),
        close: (reason) => session.finish(CLOSE_REASONS[reason]),
      },
    });
  } catch {
    if (!session.signal.aborted) {
      observer.upstreamFailed(header.dc);
      session.finish('upstream-unreachable');
    }
    return;
  }
  if (session.signal.aborted) {
    upstream.close();
    return;
  }
  observer.upstreamConnected(header.dc);
  session.established();
  session.signal.addEventListener('abort', () => upstream.close(), { once: true });
  const feed = (data: Buffer): void => {
    if (data.length === 0) return;
    observer.relayed(user, data.length, 0);
    upstream.fromClient(decrypt.update(data));
  };
  client.on('data', (chunk: Buffer) => {
    let data: Buffer;
    try {
      data = link.unwrap(chunk);
    } catch {
      session.finish('client-error');
      return;
    }
    feed(data);
  });
  client.on('drain', () => upstream.clientDrained());
  feed(link.rest);
  if (!upstream.closed) client.resume();
}
