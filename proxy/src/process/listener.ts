// The client-facing TCP listener of one worker: accepts, enforces the connection limit, hands each
// socket to a session, and can drain (stop accepting, wait for open connections).
import { createServer, type Server, type Socket } from 'node:net';

export interface ListenerOptions {
  readonly port: number;
  /** undefined: every IPv4 and IPv6 address. */
  readonly bind: string | undefined;
  readonly maxConnections: number;
  readonly onConnection: (socket: Socket) => void;
  readonly onRefused: () => void;
}

export class ClientListener {
  readonly #server: Server;
  readonly #open = new Set<Socket>();
  readonly #options: ListenerOptions;

  constructor(options: ListenerOptions) {
    this.#options = options;
    // Half-open sockets are allowed so that a masked prober that shuts down its side still gets
    // the mask host's answer; the session closes everything else itself.
    this.#server = createServer({ noDelay: true, pauseOnConnect: false, allowHalfOpen: true }, (socket) => {
      this.#open.add(socket);
      socket.once('close', () => this.#open.delete(socket));
      options.onConnection(socket);
    });
    // Above the limit Node closes the socket right after accept and tells us here.
    this.#server.maxConnections = options.maxConnections;
    this.#server.on('drop', () => options.onRefused());
  }

  /**
   * Every worker binds its own socket with SO_REUSEPORT, so the kernel spreads new connections
   * evenly over the workers and the primary never touches client traffic.
   */
  listen(): Promise<void> {
    const host = this.#options.bind ?? '::';
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        // A host without IPv6 cannot bind "::"; fall back to every IPv4 address.
        if (this.#options.bind === undefined && host === '::' && err.code === 'EAFNOSUPPORT') {
          this.#server.listen(
            { port: this.#options.port, host: '0.0.0.0', exclusive: true, reusePort: true },
            () => resolve(),
          );
          return;
        }
        reject(err);
      };
      this.#server.once('error', onError);
      this.#server.listen(
        { port: this.#options.port, host, ipv6Only: false, exclusive: true, reusePort: true },
        () => {
          this.#server.off('error', onError);
          resolve();
        },
      );
    });
  }

  /** Stop accepting; resolves when every open connection has closed or `timeoutMs` passed. */
  async drain(timeoutMs: number): Promise<void> {
    this.#server.close();
    const deadline = Date.now() + timeoutMs;
    while (this.#open.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, deadline - Date.now()))));
    }
    for (const socket of this.#open) socket.destroy();
  }
}
