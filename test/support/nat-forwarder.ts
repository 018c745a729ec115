// A stand-in for the NAT in front of a Kubernetes pod: the proxy connects to it on 127.0.0.1, and
// it opens the onward connection to the middle-end from another loopback address ("the external
// IP", 127.0.0.2 by default) and, like SNAT in the common case, from the same source port. Set
// `rewritePort` for a NAT that picks a new source port. It can also freeze a connection (read
// nothing in either direction) to make the proxy's socket back up or its keepalive notice.
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface NatOptions {
  readonly target: { readonly host: string; readonly port: number };
  readonly externalIp?: string;
  readonly rewritePort?: boolean;
}

interface Pair {
  readonly inside: Socket;
  readonly outside: Socket;
}

export class NatForwarder {
  readonly host = '127.0.0.1';
  readonly externalIp: string;
  private readonly pairs = new Set<Pair>();
  private frozen = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly options: NatOptions,
  ) {
    this.externalIp = options.externalIp ?? '127.0.0.2';
  }

  static async start(options: NatOptions): Promise<NatForwarder> {
    const server = createServer({ pauseOnConnect: true });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    const nat = new NatForwarder(server, address.port, options);
    server.on('connection', (socket) => nat.accept(socket));
    return nat;
  }

  get connections(): number {
    return this.pairs.size;
  }

  /** Stop moving bytes both ways on every connection (buffers fill, nothing arrives). */
  freeze(): void {
    this.frozen = true;
    for (const p of this.pairs) {
      p.inside.pause();
      p.outside.pause();
    }
  }

  thaw(): void {
    this.frozen = false;
    for (const p of this.pairs) {
      p.inside.resume();
      p.outside.resume();
    }
  }

  async close(): Promise<void> {
    for (const p of this.pairs) {
      p.inside.destroy();
      p.outside.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(inside: Socket): void {
    const outside = connect({
      host: this.options.target.host,
      port: this.options.target.port,
      localAddress: this.externalIp,
      ...(this.options.rewritePort ? {} : { localPort: inside.remotePort! }),
    });
    const pair = { inside, outside };
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      inside.destroy();
      outside.destroy();
    };
    for (const s of [inside, outside]) {
      s.on('error', end);
      s.on('close', end);
    }
    outside.once('connect', () => {
      this.forward(inside, outside);
      this.forward(outside, inside);
      if (!this.frozen) inside.resume();
    });
  }

  private forward(from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk) || this.frozen) from.pause();
    });
    to.on('drain', () => {
      if (!this.frozen) from.resume();
    });
  }
}
