// The stand-in middle proxy against a bare proxy side made of the same codecs: a raw socket that
// performs the nonce and handshake, then exchanges RPC messages.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import { HANDSHAKE_FLAG_CRC32C, ProxyReqFlag } from '../../../proxy/src/middle/codec/constants.js';
import { type Frame, FrameReader, FrameWriter } from '../../../proxy/src/middle/codec/full-transport.js';
import { deriveConnectionKeys } from '../../../proxy/src/middle/codec/kdf.js';
import { parseProxyConfig } from '../../../proxy/src/middle/codec/proxy-config.js';
import {
  encodeHandshake,
  parseHandshake,
  verifyHandshakeAnswer,
} from '../../../proxy/src/middle/codec/rpc-handshake.js';
import {
  encodeCloseConn,
  encodePing,
  encodePong,
  type MiddleEndMessage,
  parseMiddleEndMessage,
} from '../../../proxy/src/middle/codec/rpc-messages.js';
import {
  encodeNonce,
  keySelectorOf,
  parseNonce,
  verifyNonce,
} from '../../../proxy/src/middle/codec/rpc-nonce.js';
import { ProxyReqHeader, type ProxyReqTemplate } from '../../../proxy/src/middle/codec/rpc-proxy-req.js';
import { PLACEHOLDER_PID } from '../../support/middle-end-codec.js';
import { StandinMiddleProxy } from '../../support/standin-middle-proxy.js';

const WAIT_MS = 2000;

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  return expect.fail('the connection was accepted');
}

function codeOf(error: unknown): string | undefined {
  return (error as { code?: string } | undefined)?.code;
}

/** The proxy's end of one middle-end connection, driven by hand. */
class ProxySide {
  readonly reader = new FrameReader();
  readonly writer = new FrameWriter();
  private readonly frames: Frame[] = [];
  private waiting: (() => void) | undefined;
  private paused = false;
  closed = false;

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      this.pump();
    });
    socket.on('close', () => {
      this.closed = true;
      this.waiting?.();
    });
  }

  /** Frames are taken until the clear nonce; the rest waits for the keys. */
  private pump(): void {
    for (
      let f = this.paused ? undefined : this.reader.next();
      f;
      f = this.paused ? undefined : this.reader.next()
    ) {
      this.frames.push(f);
      if (f.seq === -2) this.paused = true;
    }
    this.waiting?.();
  }

  resume(): void {
    this.paused = false;
    this.pump();
  }

  async nextFrame(): Promise<Frame> {
    const deadline = Date.now() + WAIT_MS;
    while (this.frames.length === 0) {
      if (this.closed) throw new Error('middle-end closed the connection');
      if (Date.now() > deadline) throw new Error('no frame from the middle-end');
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.frames.shift()!;
  }

  async nextMessage(): Promise<MiddleEndMessage> {
    return parseMiddleEndMessage((await this.nextFrame()).payload);
  }

  send(payload: Buffer | readonly Buffer[]): void {
    this.socket.write(this.writer.frame(payload));
  }
}

interface ConnectOptions {
  readonly secret?: Buffer;
  readonly crc32c?: boolean;
  readonly clockOffset?: number;
}

/** Connect and run the nonce exchange and handshake as the proxy would. */
async function connectAsProxy(standin: StandinMiddleProxy, options: ConnectOptions = {}): Promise<ProxySide> {
  const socket = connect(standin.port, standin.host);
  await once(socket, 'connect');
  const side = new ProxySide(socket);
  const secret = options.secret ?? standin.secret;
  const keySelector = keySelectorOf(secret);
  const timestamp = Math.floor(Date.now() / 1000) + (options.clockOffset ?? 0);
  const nonce = randomBytes(16);
  side.send(encodeNonce({ keySelector, timestamp, nonce }));

  const answer = parseNonce((await side.nextFrame()).payload);
  verifyNonce(answer, { keySelector, now: timestamp });
  const keys = deriveConnectionKeys({
    nonceServer: answer.nonce,
    nonceClient: nonce,
    clientTimestamp: timestamp,
    server: { ip: socket.remoteAddress!, port: socket.remotePort! },
    client: { ip: socket.localAddress!, port: socket.localPort! },
    secret,
  });
  side.reader.startDecryption(keys.serverToClient);
  side.writer.startEncryption(keys.clientToServer);
  side.resume();

  const ours = {
    flags: options.crc32c ? HANDSHAKE_FLAG_CRC32C : 0,
    sender: PLACEHOLDER_PID,
    peer: PLACEHOLDER_PID,
  };
  side.send(encodeHandshake(ours));
  const result = verifyHandshakeAnswer(parseHandshake((await side.nextFrame()).payload), ours);
  if (result.crc32c) {
    side.reader.useCrc32c();
    side.writer.useCrc32c();
  }
  return side;
}

function clientTemplate(side: ProxySide, connId: bigint): ProxyReqTemplate {
  return {
    connId,
    transport: 'padded',
    client: { ip: '127.0.0.1', port: 50000 + Number(connId % 1000n) },
    proxy: { ip: side.socket.localAddress!, port: 443 },
    adTag: Buffer.alloc(16, 0xad),
  };
}

function sendRequest(side: ProxySide, template: ProxyReqTemplate, packet: Buffer, quickAck = false): void {
  side.send([new ProxyReqHeader(template).forPacket(packet, quickAck), packet]);
}

describe('stand-in middle proxy', () => {
  let standin: StandinMiddleProxy;
  const sides: ProxySide[] = [];

  afterEach(async () => {
    for (const side of sides.splice(0)) side.socket.destroy();
    await standin.close();
  });

  async function proxy(options?: ConnectOptions): Promise<ProxySide> {
    const side = await connectAsProxy(standin, options);
    sides.push(side);
    return side;
  }

  it('a proxy that completes nonce and handshake gets its RPC_PROXY_REQ echoed as RPC_PROXY_ANS', async () => {
    standin = await StandinMiddleProxy.start();
    const side = await proxy();
    const template = clientTemplate(side, 0x1122334455667788n);
    const packet = randomBytes(64);
    sendRequest(side, template, packet, true);

    const answer = await side.nextMessage();
    expect(answer).to.deep.equal({ kind: 'answer', flags: 0, connId: template.connId, data: packet });
    expect(standin.connectionsAccepted).to.equal(1);
    expect(standin.handshakesCompleted).to.equal(1);
    const [request] = standin.requests;
    expect(request).to.deep.include({
      connection: 1,
      connId: template.connId,
      client: template.client,
      proxy: template.proxy,
      adTag: template.adTag,
      packet,
      quickAck: true,
    });
    expect(request!.flags & ProxyReqFlag.INTERMEDIATE).to.not.equal(0);
    expect(standin.errors).to.deep.equal([]);
  });

  it('answers with what the test chooses, or not at all', async () => {
    standin = await StandinMiddleProxy.start({
      answer: (r) => (r.packet.length === 8 ? undefined : Buffer.from('answer!!')),
    });
    const side = await proxy();
    const template = clientTemplate(side, 7n);
    sendRequest(side, template, Buffer.alloc(8));
    sendRequest(side, template, Buffer.alloc(16));
    const answer = await side.nextMessage();
    expect(answer.kind === 'answer' && answer.data.toString()).to.equal('answer!!');
    expect(standin.requests.map((r) => r.packet.length)).to.deep.equal([8, 16]);
  });

  it('sends quick acks, RPC_CLOSE_EXT and pings on demand, and records pongs and closed clients', async () => {
    standin = await StandinMiddleProxy.start();
    const side = await proxy();
    const template = clientTemplate(side, 99n);
    sendRequest(side, template, Buffer.alloc(32, 1));
    await side.nextMessage();

    standin.sendSimpleAck(99n, Buffer.from('a1b2c3f4', 'hex'));
    expect(await side.nextMessage()).to.deep.equal({
      kind: 'simple-ack',
      connId: 99n,
      token: Buffer.from('a1b2c3f4', 'hex'),
    });
    standin.sendCloseExt(99n);
    expect(await side.nextMessage()).to.deep.equal({ kind: 'close-ext', connId: 99n });
    expect(standin.sendPing(0x0102030405060708n)).to.equal(1);
    const ping = await side.nextMessage();
    expect(ping).to.deep.equal({ kind: 'ping', pingId: 0x0102030405060708n });

    side.send(encodePong(0x0102030405060708n));
    side.send(encodeCloseConn(99n));
    await standin.waitFor(() => standin.closedConnIds.length === 1);
    expect(standin.pongs).to.deep.equal([0x0102030405060708n]);
    expect(standin.closedConnIds).to.deep.equal([99n]);
  });

  it("answers the proxy's own ping with a pong of the same id", async () => {
    standin = await StandinMiddleProxy.start();
    const side = await proxy();
    side.send(encodePing(5n));
    expect(await side.nextMessage()).to.deep.equal({ kind: 'pong', pingId: 5n });
  });

  it('switches both directions to CRC32C when the proxy asks for it', async () => {
    standin = await StandinMiddleProxy.start();
    const side = await proxy({ crc32c: true });
    expect(standin.handshakes[0]).to.deep.include({ crc32c: true, flags: HANDSHAKE_FLAG_CRC32C });
    const template = clientTemplate(side, 3n);
    sendRequest(side, template, Buffer.alloc(12, 9));
    expect(await side.nextMessage()).to.deep.include({ kind: 'answer', connId: 3n });
  });

  it('drops a proxy holding another secret before answering its nonce', async () => {
    standin = await StandinMiddleProxy.start();
    expect((await rejection(proxy({ secret: randomBytes(128) }))).message).to.include('closed');
    expect(codeOf(standin.errors[0])).to.equal('ERR_MP_NONCE_KEY');
    expect(standin.handshakesCompleted).to.equal(0);
  });

  it('drops a proxy whose clock is 31 s off its own', async () => {
    const now = Math.floor(Date.now() / 1000);
    standin = await StandinMiddleProxy.start({ clock: () => now - 31 });
    await rejection(proxy());
    expect(codeOf(standin.errors[0])).to.equal('ERR_MP_NONCE_CLOCK');
  });

  it('lets the proxy see a skewed middle-end clock in the nonce answer', async () => {
    standin = await StandinMiddleProxy.start({ clockSkewSeconds: 31 });
    expect(codeOf(await rejection(proxy()))).to.equal('ERR_MP_NONCE_CLOCK');
  });

  it('can refuse handshakes with RPC_HANDSHAKE_ERROR', async () => {
    standin = await StandinMiddleProxy.start({ handshakeError: -6 });
    const error = await rejection(proxy());
    expect(codeOf(error)).to.equal('ERR_MP_HANDSHAKE_REFUSED');
    expect(error.message).to.include('-6');
  });

  it('counts connections and can drop them all', async () => {
    standin = await StandinMiddleProxy.start();
    const [a, b] = [await proxy(), await proxy()];
    expect(standin.connectionsAccepted).to.equal(2);
    expect(standin.openConnections).to.equal(2);
    standin.dropConnections();
    await standin.waitFor(() => a!.closed && b!.closed && standin.openConnections === 0);
    await proxy();
    expect(standin.connectionsAccepted).to.equal(3);
    expect(standin.handshakes.map((h) => h.connection)).to.deep.equal([1, 2, 3]);
  });

  it('gives a config text that sends every DC to it', async () => {
    standin = await StandinMiddleProxy.start();
    const config = parseProxyConfig(standin.configText());
    expect(config.defaultDc).to.equal(2);
    expect(config.targets.get(-5)).to.deep.equal([{ host: standin.host, port: standin.port }]);
  });
});
