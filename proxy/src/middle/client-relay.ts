// One client's traffic in middle mode, after its obfuscated2 (and fake TLS) handshake. The caller
// feeds the decrypted client stream in and gets plaintext client-transport bytes out through a
// sink that encrypts and writes them. In between: packets split by the client's transport
// (padding stripped), checked as the official proxy does (§3.5), sent as RPC_PROXY_REQ on the
// client's middle-end connection (§6.8); answers and quick acks framed back in the client's
// transport (§3.4, §6.9); RPC_CLOSE_EXT or a lost middle-end connection close the client; the
// client's close sends RPC_CLOSE_CONN.
//
// Backpressure: a congested middle-end connection pauses the client (others on it pause too). A
// client that does not read its answers is paused as well, but the shared middle-end connection
// is never held up for it: its unsent bytes are capped and it is closed past the cap (official
// connections_failed_flood).
import { randomBytes } from 'node:crypto';
import type { RandomSource, Transport } from '../protocol/obfuscated2.js';
import { encodePacket, encodeQuickAck, PacketReader } from '../protocol/transports.js';
import type { BacklogBudget, BacklogHolder } from './backlog-budget.js';
import type { Endpoint } from './codec/address.js';
import { checkClientPacket } from './codec/client-packet.js';
import { ProxyReqHeader } from './codec/rpc-proxy-req.js';
import type { MiddleClientHandler, MiddleCloseReason } from './connection.js';
import { type MiddleObserver, NULL_MIDDLE_OBSERVER } from './events.js';
import type { MiddleBinding } from './pool.js';

/** Why middle mode closed a client. */
export type MiddleUpstreamCloseReason =
  /** RPC_CLOSE_EXT from the middle-end. */
  | 'middle-closed'
  /** Its middle-end connection was lost. */
  | 'middle-lost'
  /** The client's framing was broken (bad length, packet over the size limit). */
  | 'client-protocol'
  /** It let more than the cap of answers pile up unread. */
  | 'flood'
  /** The middle-end sent an answer that cannot be framed for the client. */
  | 'bad-answer';

/** The client connection as middle mode sees it. */
export interface ClientSink {
  /** Plaintext transport bytes, in order; the caller encrypts and writes. Returns socket.write's result. */
  write(chunks: readonly Buffer[]): boolean;
  /** Bytes written and not yet on the wire (e.g. socket.writableLength). */
  readonly backlog: number;
  /** Stop / restart reading the client. */
  pause(): void;
  resume(): void;
  /** Close the client connection. `close()` of this upstream may follow; it does nothing then. */
  close(reason: MiddleUpstreamCloseReason): void;
}

/** What the upstream needs from the pool (MiddleProxyPool.acquire). */
export interface MiddleBinder {
  acquire(dc: number, handler: MiddleClientHandler, timeoutMs: number): Promise<MiddleBinding>;
}

export interface MiddleUpstreamOptions {
  readonly pool: MiddleBinder;
  /** The DC index from the client's header (signed; the pool maps it to a cluster). */
  readonly dc: number;
  readonly transport: Transport;
  /** The client's address (after PROXY protocol). */
  readonly client: Endpoint;
  /** Our address for RPC_PROXY_REQ: the client connection's local address, NAT-translated. */
  readonly proxy: Endpoint;
  /** TAG: 16 bytes, or undefined for none. */
  readonly adTag?: Buffer | undefined;
  readonly sink: ClientSink;
  readonly observer?: MiddleObserver;
  /** Padding of answers to padded-intermediate clients. */
  readonly random?: RandomSource;
  /** Unsent bytes to the client before it is closed as a flood; default 1 MiB (MIDDLE_CLIENT_BACKLOG). */
  readonly maxBacklogBytes?: number;
  /** The worker's budget for all clients' backlogs (MIDDLE_BACKLOG_BUDGET); none if undefined. */
  readonly budget?: BacklogBudget;
  /** How long to wait for a ready middle-end connection; default 5 s. */
  readonly acquireTimeoutMs?: number;
  /** Send flag 0x08000000 for padded clients (mtprotoproxy, erlang, telemt); default off (official). */
  readonly forwardPadFlag?: boolean;
  /** Abort when the client goes away while `open` waits: the binding is released and `open` rejects. */
  readonly signal?: AbortSignal;
}

const DEFAULT_MAX_BACKLOG = 1 << 20;

const PAUSED_BY_MIDDLE = 1;
const PAUSED_BY_CLIENT = 2;

export class MiddleUpstream implements BacklogHolder {
  readonly #transport: Transport;
  readonly #budget: BacklogBudget | undefined;
  readonly #sink: ClientSink;
  readonly #observer: MiddleObserver;
  readonly #reader: PacketReader;
  readonly #random: RandomSource;
  readonly #maxBacklog: number;
  #binding: MiddleBinding | undefined;
  #header: ProxyReqHeader | undefined;
  #paused = 0;
  #closed = false;

  /** What the middle-end connection calls for a client: a class, so no closures are made per client. */
  static readonly #Route = class implements MiddleClientHandler {
    constructor(private readonly upstream: MiddleUpstream) {}
    answer(data: Buffer): void {
      this.upstream.#answer(data);
    }
    simpleAck(token: Buffer): void {
      this.upstream.#simpleAck(token);
    }
    closed(reason: MiddleCloseReason): void {
      this.upstream.#closedByMiddle(reason);
    }
    drain(): void {
      this.upstream.#unpause(PAUSED_BY_MIDDLE);
    }
  };

  private constructor(options: MiddleUpstreamOptions) {
    this.#transport = options.transport;
    this.#budget = options.budget;
    this.#sink = options.sink;
    this.#observer = options.observer ?? NULL_MIDDLE_OBSERVER;
    this.#reader = new PacketReader(options.transport);
    this.#random = options.random ?? randomBytes;
    this.#maxBacklog = options.maxBacklogBytes ?? DEFAULT_MAX_BACKLOG;
  }

  /**
   * Bind the client to a middle-end connection of its DC's cluster, waiting for one to become
   * ready. Rejects (MiddleUnavailableError) when none is ready in time: close the client then.
   * Keep the client paused until this resolves, then pass the bytes that came with the handshake
   * to `fromClient`.
   */
  static async open(options: MiddleUpstreamOptions): Promise<MiddleUpstream> {
    const upstream = new MiddleUpstream(options);
    const binding = await options.pool.acquire(
      options.dc,
      new MiddleUpstream.#Route(upstream),
      options.acquireTimeoutMs ?? 5000,
    );
    if (options.signal?.aborted) {
      upstream.#closed = true;
      binding.release();
      throw new Error('the client went away while waiting for a middle-end connection');
    }
    upstream.#bound(binding, options);
    return upstream;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The conn id this client has on its middle-end connection. */
  get connId(): bigint | undefined {
    return this.#binding?.connId;
  }

  /** The middle-end this client is bound to (host:port). */
  get target(): string | undefined {
    return this.#binding?.target;
  }

  /** Decrypted bytes from the client. */
  fromClient(chunk: Buffer): void {
    if (this.#closed) return;
    const reader = this.#reader;
    const binding = this.#binding!;
    const header = this.#header!;
    try {
      reader.push(chunk);
      for (let packet = reader.next(); packet; packet = reader.next()) {
        if (checkClientPacket(packet.payload) !== 'ok') {
          this.#observer.droppedQuery();
          continue;
        }
        if (!binding.open) {
          this.#observer.droppedQuery();
          continue;
        }
        const more = binding.send(header, packet.payload, packet.quickAck);
        this.#observer.forwardedQuery();
        if (!more) this.#pause(PAUSED_BY_MIDDLE);
      }
    } catch {
      // ProtocolError from the reader: the stream lost its framing. Anything else would be our
      // bug; closing this one client is still better than throwing into the socket's event.
      this.#fail('client-protocol');
    }
  }

  /** The client's socket drained (its 'drain' event). */
  clientDrained(): void {
    this.#unpause(PAUSED_BY_CLIENT);
  }

  /** The client went away: tell the middle-end (RPC_CLOSE_CONN). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#binding?.release();
  }

  #answer(data: Buffer): void {
    if (this.#closed) return;
    let frame: Buffer[];
    try {
      frame = encodePacket(this.#transport, data, this.#random);
    } catch {
      this.#fail('bad-answer');
      return;
    }
    this.#observer.forwardedResponse();
    this.#toClient(frame);
  }

  #simpleAck(token: Buffer): void {
    if (this.#closed) return;
    this.#observer.forwardedSimpleAck();
    this.#toClient([encodeQuickAck(this.#transport, token)]);
  }

  #closedByMiddle(reason: MiddleCloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sink.close(reason === 'close-ext' ? 'middle-closed' : 'middle-lost');
  }

  #bound(binding: MiddleBinding, o: MiddleUpstreamOptions): void {
    this.#binding = binding;
    this.#header = new ProxyReqHeader({
      connId: binding.connId,
      transport: o.transport,
      client: o.client,
      proxy: o.proxy,
      adTag: o.adTag,
      forwardPadFlag: o.forwardPadFlag,
    });
    if (this.#closed || !binding.open) {
      // The client left, or the connection was lost, while we waited for the binding.
      const lost = !this.#closed;
      this.#closed = true;
      binding.release();
      if (lost) this.#sink.close('middle-lost');
    }
  }

  #toClient(chunks: readonly Buffer[]): void {
    const sink = this.#sink;
    if (!sink.write(chunks)) this.#pause(PAUSED_BY_CLIENT);
    if (sink.backlog > this.#maxBacklog) {
      this.#observer.clientFlooded();
      this.#fail('flood');
      return;
    }
    this.#budget?.grew(this);
  }

  /** Bytes written to the client and not yet on the wire (for the worker's backlog budget). */
  get backlog(): number {
    return this.#sink.backlog;
  }

  /** Closed by the worker's backlog budget, as a flood. */
  shed(): void {
    this.#observer.clientFlooded();
    this.#fail('flood');
  }

  /** Close from our side: RPC_CLOSE_CONN to the middle-end, then the client. */
  #fail(reason: MiddleUpstreamCloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#binding?.release();
    this.#sink.close(reason);
  }

  #pause(by: number): void {
    if (this.#paused === 0) this.#sink.pause();
    this.#paused |= by;
  }

  #unpause(by: number): void {
    if ((this.#paused & by) === 0) return;
    this.#paused &= ~by;
    if (this.#paused === 0 && !this.#closed) this.#sink.resume();
  }
}
