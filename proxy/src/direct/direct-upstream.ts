// Direct mode (docs/protocol.md §5): dial the DC the client asked for and relay both ways.
import type { Socket } from 'node:net';
import { createDcHeader } from '../protocol/obfuscated2.js';
import type { ClientLink, SessionHooks, Upstream } from '../session/ports.js';
import type { HostPort } from './dc-table.js';
import { dial } from './dialer.js';
import { pump } from './pump.js';

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
  const { header, socket: client } = link;
  const { observer } = session;
  const targets = deps.resolveDc(header.dc) ?? [];
  let upstream: Socket;
  try {
    upstream = await dial(targets, deps.connectTimeoutMs, session.signal);
  } catch {
    if (!session.signal.aborted) observer.upstreamFailed(header.dc);
    session.finish('upstream-unreachable');
    return;
  }
  if (session.signal.aborted) {
    upstream.destroy();
    return;
  }
  observer.upstreamConnected(header.dc);
  session.established(upstream);

  // Fast mode (§5.3): the DC is told to answer with the client's own key stream, so its bytes go to
  // the client untouched (in fake TLS they only get record headers); only client -> DC bytes are
  // decrypted and encrypted again.
  const dcHeader = createDcHeader(session.random, header.transport, header.encrypt);
  const decrypt = header.decryptor;
  const encrypt = dcHeader.encryptor;
  const user = link.user;
  const { rest, unwrap, wrap } = link;
  upstream.write(
    rest.length > 0 ? Buffer.concat([dcHeader.wire, encrypt.update(decrypt.update(rest))]) : dcHeader.wire,
  );
  if (rest.length > 0) observer.relayed(user, rest.length, 0);
  pump(
    client,
    upstream,
    (chunk) => {
      const data = unwrap(chunk);
      if (data.length === 0) return undefined;
      observer.relayed(user, data.length, 0);
      return encrypt.update(decrypt.update(data));
    },
    (chunk) => {
      observer.relayed(user, 0, chunk.length);
      return wrap(chunk);
    },
    () => session.finish('client-error'),
  );
}
