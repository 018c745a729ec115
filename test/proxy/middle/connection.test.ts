// One RPC connection from the proxy to a middle-end (the stand-in on 127.0.0.1), directly and
// through a stand-in NAT that makes the middle-end see 127.0.0.2 instead of our address.
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { expect } from 'chai';
import { ipv4ToHostOrder } from '../../../proxy/src/middle/codec/address.js';
import { HANDSHAKE_FLAG_CRC32C, ProxyReqFlag } from '../../../proxy/src/middle/codec/constants.js';
import { ProxyReqHeader } from '../../../proxy/src/middle/codec/rpc-proxy-req.js';
import {
  type MiddleConnectionOptions,
  MiddleProxyConnection,
  natClientAddress,
} from '../../../proxy/src/middle/connection.js';
import { countingObserver } from '../../support/counting-observer.js';
import { NatForwarder } from '../../support/nat-forwarder.js';
import { RecordingClient } from '../../support/recording-middle-client.js';
import { StandinMiddleProxy } from '../../support/standin-middle-proxy.js';

/** An encrypted-looking MTProto packet (non-zero auth_key_id) with a recognisable fill. */
function packet(fill: number, size = 64): Buffer {
  return Buffer.alloc(size, fill);
}

function header(connId: bigint, adTag?: Buffer): ProxyReqHeader {
  return new ProxyReqHeader({
    connId,
    transport: 'intermediate',
    client: { ip: '198.51.100.7', port: 40000 },
    proxy: { ip: '203.0.113.1', port: 443 },
    adTag,
  });
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  return promise.then(
    () => expect.fail('the connection was made'),
    (e: Error) => e,
  );
}

describe('middle-end connection', () => {
  let standin: StandinMiddleProxy;
  /** Where the stand-in NAT of the current test listens: the middle-end's address for the proxy. */
  let natAddress: { ip: string; port: number } | undefined;
  const cleanup: (() => unknown)[] = [];

  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
    natAddress = undefined;
  });

  async function startStandin(options?: Parameters<typeof StandinMiddleProxy.start>[0]) {
    standin = await StandinMiddleProxy.start({ reachedAt: () => natAddress, ...options });
    cleanup.push(() => standin.close());
    return standin;
  }

  async function open(options: Partial<MiddleConnectionOptions> = {}): Promise<MiddleProxyConnection> {
    const c = await MiddleProxyConnection.open({
      target: { host: standin.host, port: standin.port },
      secret: standin.secret,
      ...options,
    });
    cleanup.push(() => c.close());
    return c;
  }

  async function nat(rewritePort = false): Promise<NatForwarder> {
    const n = await NatForwarder.start({ target: { host: standin.host, port: standin.port }, rewritePort });
    natAddress = { ip: n.host, port: n.port };
    cleanup.push(() => n.close());
    return n;
  }

  it('completes nonce and handshake, with CRC32 frames unless told otherwise', async () => {
    await startStandin();
    const c = await open();
    expect(c.ready).to.equal(true);
    expect(c.crc32c).to.equal(false);
    expect(standin.handshakes[0]!.flags).to.equal(0);
    const client = new RecordingClient();
    c.bind(1n, client);
    c.send(1n, header(1n), packet(1), false);
    await standin.waitFor(() => client.answers.length === 1);
  });

  it('asks for CRC32C when told to, and then frames with it', async () => {
    await startStandin();
    const c = await open({ crc32c: true });
    expect(c.ready).to.equal(true);
    expect(c.crc32c).to.equal(true);
    expect(standin.handshakes).to.have.length(1);
    expect(standin.handshakes[0]!.flags).to.equal(HANDSHAKE_FLAG_CRC32C);
    expect(c.addresses?.kdfClient).to.deep.equal(c.addresses?.local);
    const client = new RecordingClient();
    c.bind(1n, client);
    c.send(1n, header(1n), packet(1), false);
    await standin.waitFor(() => client.answers.length === 1);
    expect(standin.errors).to.deep.equal([]);
  });

  it('keeps CRC32 when the middle-end does not grant CRC32C', async () => {
    await startStandin({ crc32c: false });
    const c = await open({ crc32c: true });
    expect(c.crc32c).to.equal(false);
    const client = new RecordingClient();
    c.bind(1n, client);
    c.send(1n, header(1n), packet(1), false);
    await standin.waitFor(() => client.answers.length === 1);
  });

  describe('behind NAT', () => {
    it('derives the keys with the external IP and the local port, and the middle-end accepts them', async () => {
      await startStandin();
      const n = await nat();
      const c = await open({ target: { host: n.host, port: n.port }, externalIp: n.externalIp });
      const { local, kdfClient } = c.addresses!;
      expect(local.ip).to.equal('127.0.0.1');
      expect(kdfClient).to.deep.equal({ ip: '127.0.0.2', port: local.port });
      expect(standin.handshakes).to.have.length(1);
      expect(standin.handshakes[0]!.sender).to.deep.include({
        ip: ipv4ToHostOrder('127.0.0.2'),
        port: local.port,
      });
    });

    it('fails the handshake when the external IP is not given', async () => {
      await startStandin();
      const n = await nat();
      const error = await rejection(open({ target: { host: n.host, port: n.port } }));
      expect(error.code).to.equal('ERR_MIDDLE_CONNECT');
      await standin.waitFor(() => standin.errors.length === 1);
      expect(standin.handshakesCompleted).to.equal(0);
    });

    it('fails the handshake when the NAT rewrites the source port (a documented limit of middle mode)', async () => {
      await startStandin();
      const n = await nat(true);
      const error = await rejection(
        open({ target: { host: n.host, port: n.port }, externalIp: n.externalIp }),
      );
      expect(error.code).to.equal('ERR_MIDDLE_CONNECT');
      expect(standin.handshakesCompleted).to.equal(0);
    });

    it('translates only private IPv4 addresses', () => {
      const local = { ip: '10.1.2.3', port: 34567 };
      expect(natClientAddress(local, '203.0.113.9')).to.deep.equal({ ip: '203.0.113.9', port: 34567 });
      expect(natClientAddress({ ip: '::ffff:10.1.2.3', port: 1 }, '203.0.113.9').ip).to.equal('203.0.113.9');
      expect(natClientAddress({ ip: '198.51.100.4', port: 1 }, '203.0.113.9').ip).to.equal('198.51.100.4');
      expect(natClientAddress(local, undefined)).to.equal(local);
      expect(natClientAddress(local, '2001:db8::1')).to.equal(local);
      expect(natClientAddress({ ip: 'fd00::5', port: 1 }, '203.0.113.9').ip).to.equal('fd00::5');
    });
  });

  describe('refused connections', () => {
    it('rejects a middle-end that holds another secret', async () => {
      await startStandin();
      const error = await rejection(open({ secret: Buffer.alloc(128, 1) }));
      expect(error.code).to.equal('ERR_MIDDLE_CONNECT');
      expect(standin.errors[0]).to.have.property('code', 'ERR_MP_NONCE_KEY');
    });

    it('rejects a middle-end whose clock is more than 30 s off', async () => {
      await startStandin({ clockSkewSeconds: 31 });
      expect((await rejection(open())).code).to.equal('ERR_MP_NONCE_CLOCK');
    });

    it('reports RPC_HANDSHAKE_ERROR', async () => {
      await startStandin({ handshakeError: -3 });
      const error = await rejection(open());
      expect(error.code).to.equal('ERR_MP_HANDSHAKE_REFUSED');
    });

    it('gives up on a server that accepts and never answers the nonce', async () => {
      await startStandin();
      const silent: Server = createServer((socket) => {
        socket.on('error', () => {});
        socket.resume(); // reads and ignores, so it sees our close
      });
      silent.listen(0, '127.0.0.1');
      await once(silent, 'listening');
      cleanup.push(() => new Promise((resolve) => silent.close(resolve)));
      const port = (silent.address() as { port: number }).port;
      const started = Date.now();
      const error = await rejection(open({ target: { host: '127.0.0.1', port }, handshakeTimeoutMs: 150 }));
      expect(error.message).to.include('no RPC handshake within 150 ms');
      expect(Date.now() - started).to.be.below(2000);
    });

    it('reports a refused TCP connection', async () => {
      await startStandin();
      const port = standin.port;
      await standin.close();
      const error = await rejection(
        MiddleProxyConnection.open({ target: { host: '127.0.0.1', port }, secret: Buffer.alloc(64) }),
      );
      expect(error.code).to.equal('ERR_MIDDLE_CONNECT');
      expect(error.message).to.include(`127.0.0.1:${port}`).and.include('ECONNREFUSED');
      standin = await StandinMiddleProxy.start(); // for afterEach
    });
  });

  describe('multiplexing', () => {
    it("routes each client's answers to it, with the tag and addresses in every RPC_PROXY_REQ", async () => {
      await startStandin();
      const c = await open();
      const [a, b] = [new RecordingClient(), new RecordingClient()];
      c.bind(10n, a);
      c.bind(20n, b);
      const tag = Buffer.alloc(16, 0xad);
      c.send(10n, header(10n, tag), packet(0xa1), true);
      c.send(20n, header(20n, tag), packet(0xb2), false);
      c.send(10n, header(10n, tag), packet(0xa3), false);
      await standin.waitFor(() => a.answers.length === 2 && b.answers.length === 1);

      expect(a.answers).to.deep.equal([packet(0xa1), packet(0xa3)]);
      expect(b.answers).to.deep.equal([packet(0xb2)]);
      const first = standin.requests[0]!;
      expect(first).to.deep.include({
        connId: 10n,
        adTag: tag,
        quickAck: true,
        client: { ip: '198.51.100.7', port: 40000 },
        proxy: { ip: '203.0.113.1', port: 443 },
      });
      expect(first.flags & ProxyReqFlag.HAS_AD_TAG).to.equal(ProxyReqFlag.HAS_AD_TAG);
      expect(c.clientCount).to.equal(2);
    });

    it('hands quick acks and RPC_CLOSE_EXT to the client they name', async () => {
      await startStandin();
      const c = await open();
      const client = new RecordingClient();
      c.bind(5n, client);
      c.send(5n, header(5n), packet(1), true);
      await standin.waitFor(() => client.answers.length === 1);
      standin.sendSimpleAck(5n, Buffer.from('01020384', 'hex'));
      standin.sendCloseExt(5n);
      await standin.waitFor(() => client.closes.length === 1);
      expect(client.acks).to.deep.equal([Buffer.from('01020384', 'hex')]);
      expect(client.closes).to.deep.equal(['close-ext']);
      expect(c.has(5n)).to.equal(false);
      expect(standin.closedConnIds, 'no RPC_CLOSE_CONN for a client the middle-end closed').to.deep.equal([]);
    });

    it('tells the middle-end with RPC_CLOSE_CONN when a client goes away', async () => {
      await startStandin({ answer: () => undefined });
      const c = await open();
      c.bind(8n, new RecordingClient());
      c.send(8n, header(8n), packet(2), false);
      await standin.waitFor(() => standin.requests.length === 1);
      expect(c.unbind(8n)).to.equal(true);
      await standin.waitFor(() => standin.closedConnIds.length === 1);
      expect(standin.closedConnIds).to.deep.equal([8n]);
      expect(c.unbind(8n), 'a second unbind does nothing').to.equal(false);
    });

    it('refuses answers and acks for unknown clients with RPC_CLOSE_CONN and counts them dropped', async () => {
      await startStandin({ answer: () => undefined });
      const observer = countingObserver();
      const c = await open({ observer });
      c.bind(7n, new RecordingClient());
      c.send(7n, header(7n), packet(2), false);
      await standin.waitFor(() => standin.requests.length === 1);
      c.unbind(7n, false); // gone here, and the middle-end does not know yet

      standin.sendAnswer(7n, packet(3));
      standin.sendSimpleAck(7n, Buffer.alloc(4));
      await standin.waitFor(() => standin.closedConnIds.length === 2);
      expect(standin.closedConnIds).to.deep.equal([7n, 7n]);
      expect(observer.counts).to.deep.equal({ droppedResponse: 1, droppedSimpleAck: 1 });
    });

    it("answers the middle-end's pings", async () => {
      await startStandin();
      await open();
      expect(standin.sendPing(77n)).to.equal(1);
      await standin.waitFor(() => standin.pongs.length === 1);
      expect(standin.pongs).to.deep.equal([77n]);
    });

    it('tells every bound client when the connection is lost, then reports the loss', async () => {
      await startStandin();
      const lost: (Error | undefined)[] = [];
      const c = await open({ onClosed: (_c, error) => lost.push(error) });
      const clients = [new RecordingClient(), new RecordingClient(), new RecordingClient()];
      clients.forEach((client, i) => {
        c.bind(BigInt(i + 1), client);
      });
      standin.dropConnections();
      await standin.waitFor(() => lost.length === 1);
      expect(clients.map((x) => x.closes)).to.deep.equal([
        ['connection-lost'],
        ['connection-lost'],
        ['connection-lost'],
      ]);
      expect(c.ready).to.equal(false);
      expect(c.clientCount).to.equal(0);
    });

    it('keeps the other clients when one client handler throws', async () => {
      await startStandin();
      const c = await open();
      const good = new RecordingClient();
      const bad = new RecordingClient();
      bad.answer = () => {
        throw new Error('bug');
      };
      c.bind(1n, bad);
      c.bind(2n, good);
      c.send(1n, header(1n), packet(1), false);
      c.send(2n, header(2n), packet(2), false);
      await standin.waitFor(() => good.answers.length === 1 && standin.closedConnIds.length === 1);
      expect(bad.closes).to.deep.equal(['connection-lost']);
      expect(standin.closedConnIds).to.deep.equal([1n]);
      expect(c.ready).to.equal(true);
    });
  });

  describe('backpressure and keepalive', () => {
    it('says when the socket is congested and tells the waiting client when it drains', async () => {
      await startStandin({ answer: () => undefined });
      const n = await nat();
      const c = await open({ target: { host: n.host, port: n.port }, externalIp: n.externalIp });
      const client = new RecordingClient();
      c.bind(1n, client);
      n.freeze();
      const big = packet(7, 256 * 1024);
      const h = header(1n);
      let sent = 0;
      while (c.send(1n, h, big, false)) {
        if (++sent > 1000) expect.fail('the socket never reported congestion');
      }
      expect(c.writable).to.equal(false);
      expect(client.drains).to.equal(0);
      n.thaw();
      await standin.waitFor(() => client.drains === 1, 5000);
      expect(c.writable).to.equal(true);
      await standin.waitFor(() => standin.requests.length === sent + 1, 5000);
    });

    it('drops a connection that stays silent after a keepalive ping', async () => {
      await startStandin();
      const n = await nat();
      const lost: (Error | undefined)[] = [];
      await open({
        target: { host: n.host, port: n.port },
        externalIp: n.externalIp,
        pingIntervalMs: 150,
        onClosed: (_c, e) => lost.push(e),
      });
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(lost, 'a middle-end answering pings keeps the connection').to.deep.equal([]);
      n.freeze();
      await standin.waitFor(() => lost.length === 1);
      expect(lost[0]?.message).to.include('keepalive');
    });
  });
});
