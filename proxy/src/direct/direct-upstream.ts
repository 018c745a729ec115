// Direct mode (docs/protocol.md §5): dial the DC the client asked for and relay both ways.
import { createDcHeader } from '../protocol/obfuscated2.js';
import type { ClientLink, SessionHooks, Upstream } from '../session/ports.js';
import type { HostPort } from './dc-table.js';
import { dial } from './dialer.js';
import { DirectPump } from './pump.js';

export interface DirectDeps {
  readonly resolveDc: (dc: number) => readonly HostPort[] | undefined;
  readonly connectTimeoutMs: number;
}

export function directUpstream(deps: DirectDeps): Upstream {
  return {
    canServe: (dc) => deps.resolveDc(dc) !== undefined,
    start: (link, session) => {
      void connectDirect(deps, link, session);
    },
  };
}

async function connectDirect(deps: DirectDeps, link: ClientLink, session: SessionHooks): Promise<void> {
  const { header } = link;
  const targets = deps.resolveDc(header.dc) ?? [];
  let upstream: Awaited<ReturnType<typeof dial>>;
  try {
    upstream = await dial(targets, deps.connectTimeoutMs, session.signal);
  } catch {
    if (!session.ended) session.observer.upstreamFailed(header.dc);
    session.finish('upstream-unreachable');
    return;
  }
  if (session.ended) {
    upstream.destroy();
    return;
  }
  session.observer.upstreamConnected(header.dc);
  session.established(upstream);

  // Fast mode (§5.3): the DC is told to answer with the client's own key stream, so its bytes go to
  // the client untouched (in fake TLS they only get record headers); only client -> DC bytes are
  // decrypted and encrypted again. The pump keeps the two ciphers and nothing else of the handshake.
  const dcHeader = createDcHeader(session.random, header.transport, header.encrypt);
  const pump = new DirectPump(link, upstream, dcHeader.encryptor, session);
  pump.firstWrite(dcHeader.wire, link.rest);
  pump.start();
}
