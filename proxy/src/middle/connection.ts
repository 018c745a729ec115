// One RPC connection to a middle-end (§6.3-§6.10): connect, RPC_NONCE in clear, keys from the
// addresses as the middle-end sees them (the external IP behind NAT, §6.5), RPC_HANDSHAKE (CRC32C
// on request), then many clients multiplexed by conn id. Answers, quick acks and RPC_CLOSE_EXT go
// to the client bound to their conn id; pings are answered; answers for unknown ids are refused
// with RPC_CLOSE_CONN. When the connection is lost every bound client is told to close.
// Errors close the connection; nothing is ever thrown out of a socket event.
import { randomBytes } from 'node:crypto';
import { connect, isIP, type Socket } from 'node:net';
import { isPrivateAddress } from '../config/ip-detect.js';
import { ProtocolError } from '../protocol/errors.js';
import type { RandomSource } from '../protocol/obfuscated2.js';
import { type Endpoint, ipOctets, ipv4ToHostOrder } from './codec/address.js';
import { HANDSHAKE_FLAG_CRC32C } from './codec/constants.js';
import {
  checkPayloadLength,
  type FramePayload,
  FrameReader,
  FrameWriter,
  payloadLength,
} from './codec/full-transport.js';
import { behindNat, deriveConnectionKeys } from './codec/kdf.js';
import type { HostPort } from './codec/proxy-config.js';
import {
  encodeHandshake,
  type ProcessId,
  parseHandshake,
  type RpcHandshake,
  verifyHandshakeAnswer,
} from './codec/rpc-handshake.js';
import { encodeCloseConn, encodePing, encodePong, parseMiddleEndMessage } from './codec/rpc-messages.js';
import { encodeNonce, keySelectorOf, NONCE_LEN, parseNonce, verifyNonce } from './codec/rpc-nonce.js';
import type { ConnId, ProxyReqHeader } from './codec/rpc-proxy-req.js';
import { type MiddleObserver, NULL_MIDDLE_OBSERVER } from './events.js';

/** Why a client bound to a middle-end connection has to be closed. */
export type MiddleCloseReason = 'close-ext' | 'connection-lost';

/** One client's end of the multiplexing. Called from socket events: must not throw. */
export interface MiddleClientHandler {
  /** RPC_PROXY_ANS data for this client (valid during the call only). */
  answer(data: Buffer, flags: number): void;
  /** RPC_SIMPLE_ACK: the 4 token bytes as received. */
  simpleAck(token: Buffer): void;
  /** Close the client: the middle-end sent RPC_CLOSE_EXT, or this connection was lost. */
  closed(reason: MiddleCloseReason): void;
  /** The connection can take more after `send` returned false for this client. */
  drain(): void;
}

/** The addresses of one connection, for the log: what the KDF used, and why. */
export interface ConnectionAddresses {
  /** Our end of the socket. */
  readonly local: Endpoint;
  /** What we told the KDF the middle-end sees (the external IP when `local` is private). */
  readonly kdfClient: Endpoint;
  /** The middle-end as connected. */
  readonly server: Endpoint;
}

export interface MiddleConnectionOptions {
  readonly target: HostPort;
  /** The proxy secret (getProxySecret). */
  readonly secret: Buffer;
  /** EXTERNAL_IP (or the detected one): replaces a private local IPv4 in the KDF (official --nat-info). */
  readonly externalIp?: string | undefined;
  /** Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** From connect to a verified RPC_HANDSHAKE answer; default 5 s (official 3 s, telemt 10 s). */
  readonly handshakeTimeoutMs?: number;
  /**
   * Ask for CRC32C frames (official --crc32c). Default false, as the official proxy: Node's zlib
   * CRC32 is native (several GB/s) while our CRC32C is plain JavaScript (about 0.5 GB/s), and
   * CRC32C buys nothing on a connection that AES-CBC already protects.
   */
  readonly crc32c?: boolean;
  /**
   * Send RPC_PING when nothing arrived for this long, and drop the connection when the next
   * interval also passes in silence. 0 (default) turns keepalive off.
   */
  readonly pingIntervalMs?: number;
  /** Unix seconds, for the nonce timestamp. */
  readonly clock?: () => number;
  readonly random?: RandomSource;
  /** Local address to connect from. */
  readonly localAddress?: string | undefined;
  readonly observer?: MiddleObserver;
  /** Called once when a connection that was ready goes away, after its clients were told. */
  readonly onClosed?: (connection: MiddleProxyConnection, error: Error | undefined) => void;
}

export class MiddleConnectError extends Error {
  readonly code = 'ERR_MIDDLE_CONNECT';
}

/**
 * The client address for the KDF (§6.5): a private local IPv4 becomes the external IPv4, the
 * local port is kept. Public local addresses, IPv6 connections, or no external IP: unchanged.
 * Use the same translation for the proxy address in RPC_PROXY_REQ.
 */
export function natClientAddress(local: Endpoint, externalIp: string | undefined): Endpoint {
  if (externalIp === undefined || isIP(externalIp) !== 4) return local;
  if (ipOctets(local.ip).length !== 4 || !isPrivateAddress(local.ip)) return local;
  return behindNat(local, externalIp);
}

const PROCESS_START = Math.floor(Date.now() / 1000);

/** Our pid as the official client fills it: IPv4 (0 otherwise), local port, process id, start time. */
function ownPid(kdfClient: Endpoint): ProcessId {
  const ip = ipOctets(kdfClient.ip).length === 4 ? ipv4ToHostOrder(kdfClient.ip) : 0;
  return { ip, port: kdfClient.port, pid: process.pid & 0xffff, utime: PROCESS_START };
}

/** All-zero: matches any middle-end pid (official `matches_pid` treats zero fields as wildcards). */
const ANY_PID: ProcessId = { ip: 0, port: 0, pid: 0, utime: 0 };

type State = 'connecting' | 'nonce' | 'handshake' | 'ready' | 'closed';

export class MiddleProxyConnection {
  readonly target: string;
  readonly #options: MiddleConnectionOptions;
  readonly #observer: MiddleObserver;
  readonly #socket: Socket;
  readonly #reader = new FrameReader();
  readonly #writer = new FrameWriter();
  readonly #clients = new Map<ConnId, MiddleClientHandler>();
  readonly #waitingForDrain = new Set<ConnId>();
  #state: State = 'connecting';
  #timer: NodeJS.Timeout | undefined;
  #keepalive: NodeJS.Timeout | undefined;
  #heardSinceTick = false;
  #pingSent = false;
  #pingId = 0n;
  #error: Error | undefined;
  #nonce: { readonly nonce: Buffer; readonly timestamp: number } | undefined;
  #handshake: RpcHandshake | undefined;
  #addresses: ConnectionAddresses | undefined;
  #crc32c = false;
  #settle: { resolve: (c: MiddleProxyConnection) => void; reject: (e: Error) => void } | undefined;
  /**
   * Frames of this turn of the event loop, written together at its end: one CBC update and one
   * system call for every client packet (and close, pong) that arrived in the same turn.
   */
  #pending: FramePayload[] = [];
  #pendingBytes = 0;
  #flushScheduled = false;

  private constructor(options: MiddleConnectionOptions) {
    this.#options = options;
    this.#observer = options.observer ?? NULL_MIDDLE_OBSERVER;
    this.target = `${options.target.host}:${options.target.port}`;
    this.#socket = connect({
      host: options.target.host,
      port: options.target.port,
      noDelay: true,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
  }

  /** Connect and handshake; resolves once the connection can carry clients. */
  static open(options: MiddleConnectionOptions): Promise<MiddleProxyConnection> {
    const c = new MiddleProxyConnection(options);
    return new Promise((resolve, reject) => {
      c.#settle = { resolve, reject };
      c.#start();
    });
  }

  get ready(): boolean {
    return this.#state === 'ready';
  }

  /** False while the socket's buffer is over its high-water mark: hold back, wait for `drain`. */
  get writable(): boolean {
    return this.#state === 'ready' && !this.#socket.writableNeedDrain;
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  get crc32c(): boolean {
    return this.#crc32c;
  }

  /** Known once the middle-end's nonce arrived. */
  get addresses(): ConnectionAddresses | undefined {
    return this.#addresses;
  }

  has(connId: ConnId): boolean {
    return this.#clients.has(connId);
  }

  /** Route this conn id's answers to `handler`. The id must be unused on this connection. */
  bind(connId: ConnId, handler: MiddleClientHandler): void {
    if (this.#state !== 'ready') throw new Error(`middle-end connection ${this.target} is not ready`);
    if (this.#clients.has(connId)) throw new Error(`conn id ${connId} is already bound`);
    this.#clients.set(connId, handler);
  }

  /**
   * The client is gone: forget it and tell the middle-end with RPC_CLOSE_CONN (unless the
   * middle-end closed it first). Returns false if it was not bound.
   */
  unbind(connId: ConnId, tellMiddleEnd = true): boolean {
    if (!this.#clients.delete(connId)) return false;
    this.#waitingForDrain.delete(connId);
    if (tellMiddleEnd && this.#state === 'ready') this.#write(encodeCloseConn(connId));
    return true;
  }

  /**
   * One client packet as RPC_PROXY_REQ. Returns false when the socket is congested: stop reading
   * that client until its handler's `drain`. Sending on a lost connection does nothing (its
   * clients are being closed).
   */
  send(connId: ConnId, header: ProxyReqHeader, packet: Buffer, quickAck: boolean, dropped = false): boolean {
    if (this.#state !== 'ready') return true;
    this.#queue([header.forPacket(packet, quickAck, dropped), packet]);
    const socket = this.#socket;
    if (
      !socket.writableNeedDrain &&
      socket.writableLength + this.#pendingBytes < socket.writableHighWaterMark
    ) {
      return true;
    }
    this.#waitingForDrain.add(connId);
    return false;
  }

  /** Throws RangeError (as writing at once would) for a payload that cannot be framed. */
  #queue(payload: FramePayload): void {
    const bytes = payloadLength(payload);
    checkPayloadLength(bytes);
    this.#pending.push(payload);
    this.#pendingBytes += bytes;
    if (this.#pendingBytes >= FLUSH_AT_BYTES) this.#flush();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  /** Writes the frames queued so far; wakes the clients held back if the socket took them all. */
  #flush(): void {
    this.#flushScheduled = false;
    if (this.#pending.length === 0 || this.#state !== 'ready') return;
    const frames = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    let more: boolean;
    try {
      more = this.#socket.write(this.#writer.frames(frames));
    } catch (err) {
      // Every payload was checked when queued; a failure here is a bug, and costs this connection only.
      this.close(err as Error);
      return;
    }
    // Held back only because of the queue: no 'drain' will come for them.
    if (more && this.#waitingForDrain.size > 0) this.#onDrain();
  }

  /** Close now; every bound client is told `connection-lost`. */
  close(error?: Error): void {
    if (this.#state === 'closed') return;
    const wasReady = this.#state === 'ready';
    // What this turn queued (an RPC_CLOSE_CONN, say) goes out first, as it would have unbatched.
    if (wasReady && error === undefined) this.#flush();
    // The flush may have closed it already (a write that threw).
    if ((this.#state as State) === 'closed') return;
    this.#state = 'closed';
    this.#error ??= error;
    clearTimeout(this.#timer);
    clearInterval(this.#keepalive);
    this.#socket.destroy();
    const settle = this.#settle;
    this.#settle = undefined;
    if (settle) {
      const e = this.#error;
      const ours = e instanceof ProtocolError || e instanceof MiddleConnectError;
      settle.reject(
        ours
          ? e
          : new MiddleConnectError(`${this.target}: ${e?.message ?? 'the middle-end closed the connection'}`),
      );
      return;
    }
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    this.#waitingForDrain.clear();
    for (const handler of clients) guard(() => handler.closed('connection-lost'));
    if (wasReady) guard(() => this.#options.onClosed?.(this, this.#error));
  }

  #start(): void {
    const o = this.#options;
    const socket = this.#socket;
    this.#timer = setTimeout(
      () =>
        this.close(new MiddleConnectError(`${this.target}: no connection within ${connectTimeout(o)} ms`)),
      connectTimeout(o),
    );
    socket.setKeepAlive(true, 30_000);
    socket.on('error', (err) => {
      this.#error ??= err;
    });
    socket.on('close', () => this.close());
    socket.on('drain', () => this.#onDrain());
    socket.once('connect', () => this.#sendNonce());
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#reader.push(chunk);
        for (let frame = this.#reader.next(); frame; frame = this.#reader.next()) {
          this.#heardSinceTick = true;
          this.#onFrame(frame.payload);
          if (this.#state === 'closed') return;
        }
      } catch (err) {
        this.close(err as Error);
      }
    });
  }

  #sendNonce(): void {
    const o = this.#options;
    clearTimeout(this.#timer);
    const timeout = o.handshakeTimeoutMs ?? 5000;
    this.#timer = setTimeout(
      () => this.close(new MiddleConnectError(`${this.target}: no RPC handshake within ${timeout} ms`)),
      timeout,
    );
    const nonce = (o.random ?? randomBytes)(NONCE_LEN);
    const timestamp = o.clock?.() ?? Math.floor(Date.now() / 1000);
    this.#nonce = { nonce, timestamp };
    this.#state = 'nonce';
    this.#write(encodeNonce({ keySelector: keySelectorOf(o.secret), timestamp, nonce }));
  }

  #onFrame(payload: Buffer): void {
    if (this.#state === 'ready') this.#onMessage(payload);
    else if (this.#state === 'nonce') this.#onNonce(payload);
    else if (this.#state === 'handshake') this.#onHandshake(payload);
  }

  /** The middle-end's nonce: derive the keys, switch to AES-CBC, send our RPC_HANDSHAKE (§6.4-§6.6). */
  #onNonce(payload: Buffer): void {
    const o = this.#options;
    const ours = this.#nonce!;
    const answer = parseNonce(payload);
    verifyNonce(answer, { keySelector: keySelectorOf(o.secret), now: ours.timestamp });
    const socket = this.#socket;
    const local = { ip: socket.localAddress!, port: socket.localPort! };
    const server = { ip: socket.remoteAddress!, port: socket.remotePort! };
    const kdfClient = natClientAddress(local, o.externalIp);
    this.#addresses = { local, kdfClient, server };
    const keys = deriveConnectionKeys({
      nonceServer: answer.nonce,
      nonceClient: ours.nonce,
      clientTimestamp: ours.timestamp,
      server,
      client: kdfClient,
      secret: o.secret,
    });
    // Whatever follows the nonce frame is ciphertext, even bytes already received.
    this.#reader.startDecryption(keys.serverToClient);
    this.#writer.startEncryption(keys.clientToServer);
    this.#handshake = {
      flags: o.crc32c ? HANDSHAKE_FLAG_CRC32C : 0,
      sender: ownPid(kdfClient),
      peer: ANY_PID,
    };
    this.#state = 'handshake';
    this.#write(encodeHandshake(this.#handshake));
  }

  #onHandshake(payload: Buffer): void {
    const result = verifyHandshakeAnswer(parseHandshake(payload), this.#handshake!);
    if (result.crc32c) {
      this.#reader.useCrc32c();
      this.#writer.useCrc32c();
    }
    this.#crc32c = result.crc32c;
    this.#state = 'ready';
    clearTimeout(this.#timer);
    this.#startKeepalive();
    const settle = this.#settle;
    this.#settle = undefined;
    settle?.resolve(this);
  }

  #onMessage(payload: Buffer): void {
    const m = parseMiddleEndMessage(payload);
    switch (m.kind) {
      case 'answer': {
        const handler = this.#clients.get(m.connId);
        if (handler) this.#deliver(m.connId, () => handler.answer(m.data, m.flags));
        else this.#refuse(m.connId, () => this.#observer.droppedResponse());
        return;
      }
      case 'simple-ack': {
        const handler = this.#clients.get(m.connId);
        if (handler) this.#deliver(m.connId, () => handler.simpleAck(m.token));
        else this.#refuse(m.connId, () => this.#observer.droppedSimpleAck());
        return;
      }
      case 'close-ext': {
        const handler = this.#clients.get(m.connId);
        if (handler && this.unbind(m.connId, false)) guard(() => handler.closed('close-ext'));
        return;
      }
      case 'ping':
        this.#write(encodePong(m.pingId));
        return;
      default:
        // Pongs count as life (noted by the caller); unknown types are ignored as the official proxy does.
        return;
    }
  }

  /** A handler that throws is a bug in that client's code: drop that client, keep the others. */
  #deliver(connId: ConnId, call: () => void): void {
    try {
      call();
    } catch {
      const handler = this.#clients.get(connId);
      if (handler && this.unbind(connId)) guard(() => handler.closed('connection-lost'));
    }
  }

  /** An answer for a client we do not know: count it and tell the middle-end to forget it. */
  #refuse(connId: ConnId, count: () => void): void {
    guard(count);
    this.#write(encodeCloseConn(connId));
  }

  #onDrain(): void {
    if (this.#waitingForDrain.size === 0) return;
    const ids = [...this.#waitingForDrain];
    this.#waitingForDrain.clear();
    for (const id of ids) {
      const handler = this.#clients.get(id);
      if (handler) this.#deliver(id, () => handler.drain());
    }
  }

  #startKeepalive(): void {
    const interval = this.#options.pingIntervalMs ?? 0;
    if (interval <= 0) return;
    this.#heardSinceTick = false;
    this.#keepalive = setInterval(() => {
      if (this.#heardSinceTick) {
        this.#heardSinceTick = false;
        this.#pingSent = false;
        return;
      }
      if (this.#pingSent) {
        this.close(new MiddleConnectError(`${this.target}: no answer to a keepalive ping in ${interval} ms`));
        return;
      }
      this.#pingSent = true;
      this.#write(encodePing(++this.#pingId));
    }, interval);
    this.#keepalive.unref();
  }

  /** Before the handshake is done, at once (the cipher starts between frames); then in order with the packets. */
  #write(payload: Buffer): void {
    if (this.#state === 'ready') this.#queue(payload);
    else this.#socket.write(this.#writer.frame(payload));
  }
}

/** A turn's frames are written early once they reach this size (bounds the buffer and the latency). */
const FLUSH_AT_BYTES = 256 * 1024;

function connectTimeout(o: MiddleConnectionOptions): number {
  return o.connectTimeoutMs ?? 10_000;
}

function guard(call: () => void): void {
  try {
    call();
  } catch {
    // Observers and handlers report; a bug in one must not take the connection down.
  }
}
