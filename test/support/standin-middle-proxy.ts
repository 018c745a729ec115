// A stand-in for one of Telegram's middle proxies ("middle-ends"), built from the proxy's own
// codecs with the roles swapped: it listens on 127.0.0.1, holds its own fake proxy secret,
// checks the proxy's RPC_NONCE and RPC_HANDSHAKE, records every RPC_PROXY_REQ and answers each
// with an RPC_PROXY_ANS (by default the packet echoed back). Tests can make it send quick acks,
// RPC_CLOSE_EXT and pings, drop its connections, or refuse handshakes.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { Endpoint } from '../../proxy/src/middle/codec/address.js';
import { HANDSHAKE_FLAG_CRC32C, ProxyReqFlag } from '../../proxy/src/middle/codec/constants.js';
import { FrameReader, FrameWriter } from '../../proxy/src/middle/codec/full-transport.js';
import { deriveConnectionKeys } from '../../proxy/src/middle/codec/kdf.js';
import {
  encodeHandshake,
  type ProcessId,
  parseHandshake,
} from '../../proxy/src/middle/codec/rpc-handshake.js';
import { encodePing, encodePong } from '../../proxy/src/middle/codec/rpc-messages.js';
import {
  encodeNonce,
  keySelectorOf,
  parseNonce,
  verifyNonce,
} from '../../proxy/src/middle/codec/rpc-nonce.js';
import type { ConnId } from '../../proxy/src/middle/codec/rpc-proxy-req.js';
import {
  encodeCloseExt,
  encodeHandshakeError,
  encodeProxyAnsHeader,
  encodeSimpleAck,
  parseProxyMessage,
  processId,
} from './middle-end-codec.js';

export interface StandinOptions {
  /** The (fake) proxy secret both sides must hold. Default: 128 random bytes. */
  readonly secret?: Buffer;
  /** Unix seconds, for its nonce timestamp and the ±30 s check of ours. */
  readonly clock?: () => number;
  /** The data of the RPC_PROXY_ANS for a request; undefined sends none. Default: the packet echoed. */
  readonly answer?: (request: RecordedRequest) => Buffer | undefined;
  /** Grant CRC32C to a proxy that asks for it (default true). */
  readonly crc32c?: boolean;
  /** Seconds added to the timestamp of its nonce answer (to test the proxy's clock check). */
  readonly clockSkewSeconds?: number;
  /** Answer every handshake with RPC_HANDSHAKE_ERROR carrying this code, then close. */
  readonly handshakeError?: number;
  /**
   * The address proxies dial to reach it, when something forwards to it (a stand-in NAT): its own
   * end in the key derivation. Default: the listening address.
   */
  readonly reachedAt?: () => Endpoint | undefined;
  /** The loopback address it listens on (default 127.0.0.1; ::1 for IPv6 middle proxies). */
  readonly host?: '127.0.0.1' | '::1';
}

export interface RecordedRequest {
  /** 1-based number of the TCP connection it arrived on. */
  readonly connection: number;
  readonly flags: number;
  readonly quickAck: boolean;
  readonly connId: ConnId;
  readonly adTag: Buffer | undefined;
  readonly client: Endpoint;
  readonly proxy: Endpoint;
  readonly packet: Buffer;
}

export interface RecordedHandshake {
  readonly connection: number;
  readonly flags: number;
  readonly sender: ProcessId;
  readonly peer: ProcessId;
  readonly crc32c: boolean;
}

interface Connection {
  readonly index: number;
  readonly socket: Socket;
  readonly reader: FrameReader;
  readonly writer: FrameWriter;
  state: 'nonce' | 'handshake' | 'ready';
}

const POLL_MS = 5;

export class StandinMiddleProxy {
  readonly host: string;
  readonly secret: Buffer;
  readonly requests: RecordedRequest[] = [];
  readonly handshakes: RecordedHandshake[] = [];
  readonly closedConnIds: ConnId[] = [];
  readonly pongs: bigint[] = [];
  readonly unknownTypes: number[] = [];
  /** Errors that made it drop a connection (ProtocolError from the proxy's bytes, mostly). */
  readonly errors: Error[] = [];
  connectionsAccepted = 0;

  private readonly connections = new Set<Connection>();
  private readonly byConnId = new Map<ConnId, Connection>();
  private readonly pid: ProcessId;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly options: StandinOptions,
  ) {
    this.host = options.host ?? '127.0.0.1';
    this.secret = options.secret ?? randomBytes(128);
    // The official pid carries an IPv4 address, zero on IPv6.
    this.pid = processId(this.host === '::1' ? '0.0.0.0' : this.host, port, process.pid & 0xffff, this.now());
  }

  static async start(options: StandinOptions = {}): Promise<StandinMiddleProxy> {
    const server = createServer();
    server.listen(0, options.host ?? '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    const standin = new StandinMiddleProxy(server, address.port, options);
    server.on('connection', (socket) => standin.accept(socket));
    return standin;
  }

  get address(): Endpoint {
    return { ip: this.host, port: this.port };
  }

  get openConnections(): number {
    return this.connections.size;
  }

  get handshakesCompleted(): number {
    return this.handshakes.length;
  }

  /** A getProxyConfig text sending the given DCs (default 1..5 and their media ids) here. */
  configText(dcs: readonly number[] = [1, -1, 2, -2, 3, -3, 4, -4, 5, -5]): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host;
    return ['default 2;', ...dcs.map((dc) => `proxy_for ${dc} ${host}:${this.port};`), ''].join('\n');
  }

  sendAnswer(connId: ConnId, data: Buffer, flags = 0): void {
    this.send(this.connectionOf(connId), [encodeProxyAnsHeader(flags, connId), data]);
  }

  sendSimpleAck(connId: ConnId, token: Buffer): void {
    this.send(this.connectionOf(connId), encodeSimpleAck(connId, token));
  }

  sendCloseExt(connId: ConnId): void {
    this.send(this.connectionOf(connId), encodeCloseExt(connId));
  }

  /** Ping every connection past its handshake; returns how many were pinged. */
  sendPing(pingId: bigint): number {
    let sent = 0;
    for (const c of this.connections) {
      if (c.state !== 'ready') continue;
      this.send(c, encodePing(pingId));
      sent++;
    }
    return sent;
  }

  /** Cut every connection, as a middle-end restart would. */
  dropConnections(): void {
    for (const c of this.connections) c.socket.destroy();
  }

  async waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
    for (let waited = 0; !condition(); waited += POLL_MS) {
      if (waited >= timeoutMs) throw new Error(`stand-in middle proxy: condition not met in ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private now(): number {
    return this.options.clock?.() ?? Math.floor(Date.now() / 1000);
  }

  private accept(socket: Socket): void {
    const c: Connection = {
      index: ++this.connectionsAccepted,
      socket,
      reader: new FrameReader(),
      writer: new FrameWriter(),
      state: 'nonce',
    };
    this.connections.add(c);
    socket.setNoDelay(true);
    socket.on('close', () => {
      this.connections.delete(c);
      for (const [id, owner] of this.byConnId) if (owner === c) this.byConnId.delete(id);
    });
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      try {
        c.reader.push(chunk);
        for (let frame = c.reader.next(); frame; frame = c.reader.next()) this.onFrame(c, frame.payload);
      } catch (error) {
        this.errors.push(error as Error);
        socket.destroy();
      }
    });
  }

  private onFrame(c: Connection, payload: Buffer): void {
    if (c.state === 'nonce') this.onNonce(c, payload);
    else if (c.state === 'handshake') this.onHandshake(c, payload);
    else this.onMessage(c, payload);
  }

  private onNonce(c: Connection, payload: Buffer): void {
    const theirs = parseNonce(payload);
    const keySelector = keySelectorOf(this.secret);
    verifyNonce(theirs, { keySelector, now: this.now() });
    const ours = randomBytes(16);
    const timestamp = this.now() + (this.options.clockSkewSeconds ?? 0);
    c.socket.write(c.writer.frame(encodeNonce({ keySelector, timestamp, nonce: ours })));
    const keys = deriveConnectionKeys({
      nonceServer: ours,
      nonceClient: theirs.nonce,
      clientTimestamp: theirs.timestamp,
      server: this.options.reachedAt?.() ?? { ip: c.socket.localAddress!, port: c.socket.localPort! },
      client: { ip: c.socket.remoteAddress!, port: c.socket.remotePort! },
      secret: this.secret,
    });
    c.reader.startDecryption(keys.clientToServer);
    c.writer.startEncryption(keys.serverToClient);
    c.state = 'handshake';
  }

  private onHandshake(c: Connection, payload: Buffer): void {
    const theirs = parseHandshake(payload);
    if (this.options.handshakeError !== undefined) {
      c.socket.end(c.writer.frame(encodeHandshakeError(this.options.handshakeError, this.pid)));
      return;
    }
    const crc32c = (this.options.crc32c ?? true) && (theirs.flags & HANDSHAKE_FLAG_CRC32C) !== 0;
    const flags = crc32c ? HANDSHAKE_FLAG_CRC32C : 0;
    c.socket.write(c.writer.frame(encodeHandshake({ flags, sender: this.pid, peer: theirs.sender })));
    if (crc32c) {
      c.reader.useCrc32c();
      c.writer.useCrc32c();
    }
    this.handshakes.push({
      connection: c.index,
      flags: theirs.flags,
      sender: theirs.sender,
      peer: theirs.peer,
      crc32c,
    });
    c.state = 'ready';
  }

  private onMessage(c: Connection, payload: Buffer): void {
    const message = parseProxyMessage(payload);
    switch (message.kind) {
      case 'request': {
        const r = message.request;
        const recorded: RecordedRequest = {
          connection: c.index,
          flags: r.flags,
          quickAck: (r.flags & ProxyReqFlag.QUICKACK) !== 0,
          connId: r.connId,
          adTag: r.adTag && Buffer.from(r.adTag),
          client: r.client,
          proxy: r.proxy,
          packet: Buffer.from(r.packet),
        };
        this.requests.push(recorded);
        this.byConnId.set(r.connId, c);
        const data = this.options.answer ? this.options.answer(recorded) : recorded.packet;
        if (data) this.send(c, [encodeProxyAnsHeader(0, r.connId), data]);
        return;
      }
      case 'close-conn':
        this.closedConnIds.push(message.connId);
        this.byConnId.delete(message.connId);
        return;
      case 'ping':
        this.send(c, encodePong(message.pingId));
        return;
      case 'pong':
        this.pongs.push(message.pingId);
        return;
      case 'unknown':
        this.unknownTypes.push(message.type);
        return;
    }
  }

  private connectionOf(connId: ConnId): Connection {
    const c = this.byConnId.get(connId);
    if (!c) throw new Error(`stand-in middle proxy: no open connection carries client ${connId}`);
    return c;
  }

  private send(c: Connection, payload: Buffer | readonly Buffer[]): void {
    c.socket.write(c.writer.frame(payload));
  }
}
