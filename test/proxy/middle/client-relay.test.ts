// One client in middle mode: a fake client end (plaintext transport bytes in and out, as the
// session would hand them over after decryption) against a real pool and the stand-in middle
// proxy, for each of the three client transports.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { BacklogBudget } from '../../../proxy/src/middle/backlog-budget.js';
import {
  type ClientSink,
  MiddleUpstream,
  type MiddleUpstreamCloseReason,
  type MiddleUpstreamOptions,
} from '../../../proxy/src/middle/client-relay.js';
import { ProxyReqFlag } from '../../../proxy/src/middle/codec/constants.js';
import { parseProxyConfig } from '../../../proxy/src/middle/codec/proxy-config.js';
import { MiddleProxyPool, MiddleUnavailableError } from '../../../proxy/src/middle/pool.js';
import type { Transport } from '../../../proxy/src/protocol/obfuscated2.js';
import { encodePacket, PacketReader } from '../../../proxy/src/protocol/transports.js';
import { countingObserver } from '../../support/counting-observer.js';
import { NatForwarder } from '../../support/nat-forwarder.js';
import { StandinMiddleProxy } from '../../support/standin-middle-proxy.js';

/** The client's end: what it would receive (decrypted), and how the session treats its socket. */
class FakeClient implements ClientSink {
  readonly received: Buffer[] = [];
  readonly closes: MiddleUpstreamCloseReason[] = [];
  pauses = 0;
  resumes = 0;
  /** Unsent bytes, as socket.writableLength would show for a client that does not read. */
  backlog = 0;
  /** When set, received bytes stay in the backlog and write() reports congestion past this. */
  stalledAt: number | undefined;

  write(chunks: readonly Buffer[]): boolean {
    for (const c of chunks) {
      this.received.push(Buffer.from(c));
      if (this.stalledAt !== undefined) this.backlog += c.length;
    }
    return this.stalledAt === undefined || this.backlog < this.stalledAt;
  }
  pause(): void {
    this.pauses++;
  }
  resume(): void {
    this.resumes++;
  }
  close(reason: MiddleUpstreamCloseReason): void {
    this.closes.push(reason);
  }
  get bytes(): Buffer {
    return Buffer.concat(this.received);
  }
}

/** An encrypted MTProto packet: non-zero auth_key_id, then message bytes. */
function encrypted(size = 96): Buffer {
  const p = randomBytes(size);
  p.writeUInt32LE(0x11223344, 0);
  return p;
}

/** req_pq_multi as a client sends it before it has a key (unencrypted). */
function reqPqMulti(fn = 0xbe7e8ef1, innerLength = 20): Buffer {
  const p = Buffer.alloc(40);
  p.writeBigUInt64LE(0x5f00000000000004n, 8); // msg_id
  p.writeInt32LE(innerLength, 16);
  p.writeUInt32LE(fn, 20);
  randomBytes(16).copy(p, 24);
  return p;
}

const frame = (t: Transport, packet: Buffer, quickAck = false) =>
  Buffer.concat(encodePacket(t, packet, randomBytes, quickAck));

function packetsOf(t: Transport, bytes: Buffer): Buffer[] {
  const reader = new PacketReader(t);
  reader.push(bytes);
  const out: Buffer[] = [];
  for (let p = reader.next(); p; p = reader.next()) out.push(Buffer.from(p.payload));
  return out;
}

const TAG = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
const CLIENT = { ip: '198.51.100.23', port: 51234 };
const PROXY = { ip: '203.0.113.10', port: 443 };

describe('middle mode for one client', () => {
  let standin: StandinMiddleProxy;
  let pool: MiddleProxyPool;
  let natAddress: { ip: string; port: number } | undefined;
  const cleanup: (() => unknown)[] = [];

  beforeEach(async () => {
    standin = await StandinMiddleProxy.start({ reachedAt: () => natAddress });
    pool = new MiddleProxyPool({
      secret: standin.secret,
      config: parseProxyConfig(standin.configText()),
      minConnections: 1,
    });
    pool.start();
  });

  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
    pool.close();
    await standin.close();
    natAddress = undefined;
  });

  async function open(
    transport: Transport,
    options: Partial<MiddleUpstreamOptions> = {},
  ): Promise<{ upstream: MiddleUpstream; client: FakeClient }> {
    const client = new FakeClient();
    const upstream = await MiddleUpstream.open({
      pool,
      dc: 2,
      transport,
      client: CLIENT,
      proxy: PROXY,
      adTag: TAG,
      sink: client,
      ...options,
    });
    cleanup.push(() => upstream.close());
    return { upstream, client };
  }

  const transportFlag: Record<Transport, number> = {
    abridged: ProxyReqFlag.ABRIDGED,
    intermediate: ProxyReqFlag.INTERMEDIATE,
    padded: ProxyReqFlag.INTERMEDIATE,
  };

  for (const transport of ['abridged', 'intermediate', 'padded'] as const) {
    describe(`${transport} client`, () => {
      it('sends a packet as RPC_PROXY_REQ with the flags, the tag and both addresses, and frames the echo', async () => {
        const { upstream, client } = await open(transport);
        const packet = encrypted(transport === 'abridged' ? 600 : 96); // abridged: the long length form
        upstream.fromClient(frame(transport, packet));
        await standin.waitFor(() => client.received.length > 0);

        const [request] = standin.requests;
        expect(request).to.deep.include({
          connId: upstream.connId,
          adTag: TAG,
          client: CLIENT,
          proxy: PROXY,
        });
        expect(request!.packet).to.deep.equal(packet);
        const flags =
          ProxyReqFlag.MAGIC | ProxyReqFlag.EXTMODE2 | ProxyReqFlag.HAS_AD_TAG | transportFlag[transport];
        expect(request!.flags >>> 0).to.equal(flags >>> 0);
        expect(packetsOf(transport, client.bytes)).to.deep.equal([packet]);
      });

      it('passes the quick-ack request on and returns the quick ack in the client transport', async () => {
        const { upstream, client } = await open(transport);
        upstream.fromClient(frame(transport, encrypted(), true));
        await standin.waitFor(() => standin.requests.length === 1 && client.received.length > 0);
        expect(standin.requests[0]!.quickAck).to.equal(true);
        client.received.length = 0;

        const token = Buffer.from('8a1b2c3d', 'hex');
        standin.sendSimpleAck(upstream.connId!, token);
        await standin.waitFor(() => client.received.length === 1);
        const expected = transport === 'abridged' ? Buffer.from('3d2c1b8a', 'hex') : token;
        expect(client.bytes).to.deep.equal(expected);
      });

      it('closes the client on RPC_CLOSE_EXT', async () => {
        const { upstream, client } = await open(transport);
        upstream.fromClient(frame(transport, encrypted()));
        await standin.waitFor(() => client.received.length > 0);
        standin.sendCloseExt(upstream.connId!);
        await standin.waitFor(() => client.closes.length === 1);
        expect(client.closes).to.deep.equal(['middle-closed']);
        expect(upstream.closed).to.equal(true);
      });
    });
  }

  it('splits packets that arrive byte by byte and several in one chunk', async () => {
    const { upstream, client } = await open('padded');
    const packets = [encrypted(64), encrypted(128), encrypted(60)];
    const bytes = Buffer.concat(packets.map((p) => frame('padded', p)));
    for (let i = 0; i < 10; i++) upstream.fromClient(bytes.subarray(i, i + 1));
    upstream.fromClient(bytes.subarray(10));
    await standin.waitFor(() => packetsOf('padded', client.bytes).length === 3);
    expect(standin.requests.map((r) => r.packet)).to.deep.equal(packets);
    expect(packetsOf('padded', client.bytes)).to.deep.equal(packets);
  });

  it('sends no tag and no flag 0x8 when TAG is not set', async () => {
    const { upstream } = await open('intermediate', { adTag: undefined });
    upstream.fromClient(frame('intermediate', encrypted()));
    await standin.waitFor(() => standin.requests.length === 1);
    expect(standin.requests[0]!.adTag).to.equal(undefined);
    expect(standin.requests[0]!.flags & ProxyReqFlag.HAS_AD_TAG).to.equal(0);
  });

  describe('checks on client packets', () => {
    it('forwards the key exchange unencrypted-flagged and drops what the official proxy drops', async () => {
      const observer = countingObserver();
      const { upstream } = await open('intermediate', { observer });
      const dropped = [
        Buffer.alloc(24, 1), // shorter than 28
        Buffer.alloc(48, 1), // encrypted but shorter than 56
        reqPqMulti(0x12345678), // not a key-exchange call
        reqPqMulti(0xbe7e8ef1, 64), // inner length past the end
      ];
      for (const p of dropped) upstream.fromClient(frame('intermediate', p));
      const pq = reqPqMulti();
      upstream.fromClient(frame('intermediate', pq));
      await standin.waitFor(() => standin.requests.length === 1);
      expect(standin.requests[0]!.packet).to.deep.equal(pq);
      expect(standin.requests[0]!.flags & ProxyReqFlag.NOT_ENCRYPTED).to.equal(ProxyReqFlag.NOT_ENCRYPTED);
      expect(observer.counts).to.deep.include({ droppedQuery: 4, forwardedQuery: 1 });
    });

    it('closes a client whose framing is broken and tells the middle-end', async () => {
      const { upstream, client } = await open('intermediate');
      upstream.fromClient(frame('intermediate', encrypted()));
      await standin.waitFor(() => client.received.length > 0);
      upstream.fromClient(Buffer.from([0x05, 0, 0, 0, 1, 2, 3, 4, 5])); // length 5: not whole words
      expect(client.closes).to.deep.equal(['client-protocol']);
      await standin.waitFor(() => standin.closedConnIds.length === 1);
      expect(standin.closedConnIds).to.deep.equal([upstream.connId]);
    });
  });

  describe('lifecycle', () => {
    it('sends RPC_CLOSE_CONN when the client goes away', async () => {
      const { upstream } = await open('abridged');
      upstream.fromClient(frame('abridged', encrypted()));
      await standin.waitFor(() => standin.requests.length === 1);
      upstream.close();
      upstream.close();
      await standin.waitFor(() => standin.closedConnIds.length === 1);
      expect(standin.closedConnIds).to.deep.equal([upstream.connId]);
      expect(pool.boundClients).to.equal(0);
    });

    it('closes every client of a middle-end connection that is lost', async () => {
      const a = await open('abridged');
      const b = await open('padded');
      standin.dropConnections();
      await standin.waitFor(() => a.client.closes.length === 1 && b.client.closes.length === 1);
      expect([...a.client.closes, ...b.client.closes]).to.deep.equal(['middle-lost', 'middle-lost']);
    });

    it('refuses the client when no middle-end connection becomes ready in time', async () => {
      pool.close();
      pool = new MiddleProxyPool({
        secret: standin.secret,
        config: parseProxyConfig('proxy_for 2 127.0.0.1:1;'),
        minConnections: 1,
      });
      pool.start();
      const error = await open('abridged', { acquireTimeoutMs: 100 }).catch((e: Error) => e);
      expect(error).to.be.instanceOf(MiddleUnavailableError);
    });

    it('releases the binding when the client left while waiting for it', async () => {
      const gone = new AbortController();
      gone.abort();
      const error = await open('abridged', { signal: gone.signal }).then(
        () => expect.fail('bound'),
        (e: Error) => e,
      );
      expect(error.message).to.include('went away');
      expect(pool.boundClients).to.equal(0);
    });
  });

  describe('backpressure', () => {
    it('pauses a client that does not read its answers, resumes it when it drains', async () => {
      const { upstream, client } = await open('intermediate');
      client.stalledAt = 100;
      upstream.fromClient(frame('intermediate', encrypted(200)));
      await standin.waitFor(() => client.received.length > 0);
      expect(client.pauses).to.equal(1);
      client.backlog = 0;
      upstream.clientDrained();
      expect(client.resumes).to.equal(1);
    });

    it('closes a client whose unread answers pass the cap, without holding up the others', async () => {
      const observer = countingObserver();
      const slow = await open('intermediate', { maxBacklogBytes: 1000, observer });
      const fast = await open('intermediate');
      slow.client.stalledAt = 0;
      for (let i = 0; i < 5; i++) slow.upstream.fromClient(frame('intermediate', encrypted(400)));
      fast.upstream.fromClient(frame('intermediate', encrypted(400)));
      await standin.waitFor(() => slow.client.closes.length === 1 && fast.client.received.length > 0);
      expect(slow.client.closes).to.deep.equal(['flood']);
      expect(observer.counts.clientFlooded).to.equal(1);
      await standin.waitFor(() => standin.closedConnIds.includes(slow.upstream.connId!));
      expect(fast.client.closes).to.deep.equal([]);
    });

    it('by default closes a non-reader once about 1 MiB of answers is queued for it', async () => {
      const observer = countingObserver();
      const { upstream, client } = await open('intermediate', { observer });
      client.stalledAt = 0;
      for (let i = 0; i < 12; i++) upstream.fromClient(frame('intermediate', encrypted(128 * 1024)));
      await standin.waitFor(() => client.closes.length === 1, 5000);
      expect(client.closes).to.deep.equal(['flood']);
      expect(client.backlog)
        .to.be.above(1 << 20)
        .and.below(2 << 20);
    });

    it("past the worker's budget, the non-readers with the largest backlogs are closed first", async () => {
      const budget = new BacklogBudget(200 * 1024);
      const big = await open('intermediate', { budget });
      const medium = await open('intermediate', { budget });
      const reader = await open('intermediate', { budget });
      big.client.stalledAt = 0;
      medium.client.stalledAt = 0;
      for (let i = 0; i < 5; i++) medium.upstream.fromClient(frame('intermediate', encrypted(20 * 1024)));
      await standin.waitFor(() => medium.client.backlog >= 100 * 1024);
      for (let i = 0; i < 8; i++) big.upstream.fromClient(frame('intermediate', encrypted(20 * 1024)));
      reader.upstream.fromClient(frame('intermediate', encrypted(400)));
      await standin.waitFor(() => big.client.closes.length === 1 && reader.client.received.length > 0);
      expect(big.client.closes).to.deep.equal(['flood']);
      expect(medium.client.closes).to.deep.equal([]);
      expect(reader.client.closes).to.deep.equal([]);
      expect(budget.shedCount).to.equal(1);
    });

    it('pauses the client while its middle-end connection is congested', async () => {
      const nat = await NatForwarder.start({ target: { host: standin.host, port: standin.port } });
      cleanup.push(() => nat.close());
      natAddress = { ip: nat.host, port: nat.port };
      pool.close();
      pool = new MiddleProxyPool({
        secret: standin.secret,
        config: parseProxyConfig(`proxy_for 2 ${nat.host}:${nat.port};`),
        minConnections: 1,
        externalIp: nat.externalIp,
      });
      pool.start();
      const { upstream, client } = await open('intermediate');
      nat.freeze();
      const big = frame('intermediate', encrypted(256 * 1024));
      for (let i = 0; client.pauses === 0; i++) {
        if (i > 1000) expect.fail('the client was never paused');
        upstream.fromClient(big);
      }
      expect(client.resumes).to.equal(0);
      nat.thaw();
      await standin.waitFor(() => client.resumes === 1, 5000);
    });
  });
});
