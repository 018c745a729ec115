// Moves bytes both ways between an authenticated client and its DC, with backpressure: when one
// side cannot keep up, the other side stops being read until it drains. Nothing is queued beyond
// the sockets' own high-water marks.
//
// One object per connection and no closures: its listeners are shared (session/socket-owner.ts).
import type { Cipheriv } from 'node:crypto';
import type { Socket } from 'node:net';
import type { ClientLink, SessionHooks } from '../session/ports.js';
import { SocketOwner } from '../session/socket-owner.js';

const PUMP = new SocketOwner<DirectPump>('direct pump');

export class DirectPump {
  private readonly client: Socket;
  /** client -> proxy; then `encrypt`, proxy -> DC. DC -> client bytes pass untouched (fast mode, §5.3). */
  private readonly decrypt: Cipheriv;
  private readonly unwrap: ClientLink['unwrap'];
  private readonly wrap: ClientLink['wrap'];
  private readonly user: string;

  /** Takes from `link` only what relaying needs, so nothing else of the handshake stays reachable. */
  constructor(
    link: ClientLink,
    private readonly upstream: Socket,
    private readonly encrypt: Cipheriv,
    private readonly session: SessionHooks,
  ) {
    this.client = link.socket;
    this.decrypt = link.header.decryptor;
    this.unwrap = link.unwrap;
    this.wrap = link.wrap;
    this.user = link.user;
  }

  /** Starts reading both sides. */
  start(): void {
    const { client, upstream } = this;
    PUMP.own(client, this);
    PUMP.own(upstream, this);
    client.on('data', onClientData);
    client.on('drain', onClientDrain);
    upstream.on('data', onUpstreamData);
    upstream.on('drain', onUpstreamDrain);
    client.resume();
    upstream.resume();
  }

  /** The DC's header, with the bytes the client sent after its own (already unwrapped), in one write. */
  firstWrite(dcHeader: Buffer, rest: Buffer): void {
    const data = rest.length > 0 ? this.#toUpstream(rest) : undefined;
    this.upstream.write(data === undefined ? dcHeader : Buffer.concat([dcHeader, data]));
  }

  /** Obfuscated2 bytes for the DC, or undefined for nothing; throws on bytes that do not parse. */
  #toUpstream(data: Buffer): Buffer | undefined {
    if (data.length === 0) return undefined;
    this.session.observer.relayed(this.user, data.length, 0);
    return this.encrypt.update(this.decrypt.update(data));
  }

  fromClient(chunk: Buffer): void {
    let out: Buffer | undefined;
    try {
      out = this.#toUpstream(this.unwrap(chunk));
    } catch {
      this.client.pause();
      this.session.finish('client-error');
      return;
    }
    if (out !== undefined && !this.upstream.write(out)) this.client.pause();
  }

  fromUpstream(chunk: Buffer): void {
    this.session.observer.relayed(this.user, 0, chunk.length);
    let out: Buffer;
    try {
      out = this.wrap(chunk);
    } catch {
      this.upstream.pause();
      this.session.finish('client-error');
      return;
    }
    if (out.length > 0 && !this.client.write(out)) this.upstream.pause();
  }

  clientDrained(): void {
    this.upstream.resume();
  }

  upstreamDrained(): void {
    this.client.resume();
  }
}

const onClientData = PUMP.listener((pump, chunk: Buffer) => pump.fromClient(chunk));
const onUpstreamData = PUMP.listener((pump, chunk: Buffer) => pump.fromUpstream(chunk));
const onClientDrain = PUMP.listener((pump) => pump.clientDrained());
const onUpstreamDrain = PUMP.listener((pump) => pump.upstreamDrained());
