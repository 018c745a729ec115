// The socket driver of the session (session/client-session.ts) on a real loopback socket, with
// ports a test controls: what a client sees when a port misbehaves.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { expect } from 'chai';
import { type SessionDeps, sessionServer } from '../../../proxy/src/session/client-session.js';
import type { HandshakeFailure, SessionObserver } from '../../../proxy/src/session/events.js';
import type { ClientLink, ReplayGuard, Upstream } from '../../../proxy/src/session/ports.js';
import { Obfs2Client } from '../../support/obfs2-client.js';

const SECRET = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');

interface Seen {
  readonly failures: HandshakeFailure[];
  readonly accepted: ClientLink[];
  readonly closed: string[];
}

function observer(seen: Seen): SessionObserver {
  return {
    handshakeOk() {},
    userRefused() {},
    handshakeFailed: (reason) => seen.failures.push(reason),
    refused() {},
    masked() {},
    maskFailed() {},
    upstreamConnected() {},
    upstreamFailed() {},
    relayed() {},
    closed: (reason) => seen.closed.push(reason),
  };
}

/** An upstream that takes the client and ends the session at once, as `endAs`. */
function endingUpstream(seen: Seen, endAs: 'upstream-closed' | 'refused' = 'upstream-closed'): Upstream {
  return {
    canServe: () => true,
    start: (link, hooks) => {
      seen.accepted.push(link);
      hooks.finish(endAs);
    },
  };
}

async function listen(
  replay: ReplayGuard,
  seen: Seen,
  upstream: Upstream = endingUpstream(seen),
): Promise<{ server: Server; port: number }> {
  const deps: SessionDeps = {
    users: () => ({ secrets: [SECRET], names: ['secret1'] }),
    modes: new Set(['classic', 'secure']),
    fakeTls: undefined,
    proxyProtocol: 'off',
    replay,
    admit: () => () => {},
    mask: undefined,
    upstream,
    handshakeTimeoutMs: 400,
    idleTimeoutMs: 5000,
    random: randomBytes,
    observer: observer(seen),
  };
  const server = createServer({ allowHalfOpen: true }, sessionServer(deps));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port };
}

describe('the session driver when the replay guard misbehaves', () => {
  const cases: Array<[string, ReplayGuard['check']]> = [
    [
      'throws',
      () => {
        throw new Error('replay store down');
      },
    ],
    ['rejects', () => Promise.reject(new Error('replay store down'))],
  ];
  for (const [how, check] of cases) {
    it(`a client with the right secret is not let through when the guard ${how}: it fails closed, counted as unanswered`, async () => {
      const seen: Seen = { failures: [], accepted: [], closed: [] };
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown): void => {
        unhandled.push(reason);
      };
      process.on('unhandledRejection', onUnhandled);
      const { server, port } = await listen({ check }, seen);
      try {
        const client = await Obfs2Client.connect({ port, secret: SECRET, timeoutMs: 3000 });
        await client.waitForClose(3000);
        expect(seen.accepted).to.have.length(0);
        expect(seen.failures).to.deep.equal(['replay-unanswered']);
        expect(seen.closed).to.deep.equal(['handshake-failed']);
        await new Promise((resolve) => setImmediate(resolve));
        expect(unhandled).to.deep.equal([]);
      } finally {
        process.off('unhandledRejection', onUnhandled);
        server.close();
      }
    });
  }

  it('a client with the right secret is handed to the upstream when the guard answers fresh', async () => {
    const seen: Seen = { failures: [], accepted: [], closed: [] };
    const { server, port } = await listen({ check: () => 'fresh' }, seen);
    try {
      const client = await Obfs2Client.connect({ port, secret: SECRET, timeoutMs: 3000 });
      await client.waitForClose(3000);
      expect(seen.failures).to.deep.equal([]);
      expect(seen.accepted.map((link) => link.user)).to.deep.equal(['secret1']);
    } finally {
      server.close();
    }
  });

  it('a client its user limits turn away before any upstream is counted as refused, not as a failed handshake', async () => {
    const seen: Seen = { failures: [], accepted: [], closed: [] };
    const { server, port } = await listen({ check: () => 'fresh' }, seen, endingUpstream(seen, 'refused'));
    try {
      const client = await Obfs2Client.connect({ port, secret: SECRET, timeoutMs: 3000 });
      await client.waitForClose(3000);
      expect(seen.failures).to.deep.equal([]);
      expect(seen.closed).to.deep.equal(['refused']);
    } finally {
      server.close();
    }
  });

  it('an upstream learns once that a relayed session ended, after the client leaves', async () => {
    const ends: boolean[] = [];
    let hooksSeen: { ended: boolean } | undefined;
    const seen: Seen = { failures: [], accepted: [], closed: [] };
    const upstream: Upstream = {
      canServe: () => true,
      start: (link, hooks) => {
        seen.accepted.push(link);
        hooksSeen = hooks;
        hooks.established();
        hooks.onEnd(() => ends.push(hooks.ended));
      },
    };
    const { server, port } = await listen({ check: () => 'fresh' }, seen, upstream);
    try {
      const client = await Obfs2Client.connect({ port, secret: SECRET, timeoutMs: 3000 });
      for (let i = 0; i < 100 && seen.accepted.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(hooksSeen?.ended).to.equal(false);
      expect(ends).to.deep.equal([]);
      await client.close();
      for (let i = 0; i < 100 && ends.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(ends).to.deep.equal([true]);
      expect(seen.closed).to.deep.equal(['client-closed']);
    } finally {
      server.close();
    }
  });
});
