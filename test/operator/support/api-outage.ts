// A TCP relay on 127.0.0.1 between the operator and the API server, so a test can take the API
// server "down" (every open connection reset, new ones refused) and bring it back, as a restart
// or a network outage would, without touching the shared control plane.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';

export class ApiOutage {
  readonly #sockets = new Set<Socket>();
  #down = false;
  private constructor(
    readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: URL): Promise<ApiOutage> {
    let relay: ApiOutage | undefined;
    const server = createServer((client) => relay?.accept(client, target));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    relay = new ApiOutage(server, port);
    return relay;
  }

  accept(client: Socket, target: URL): void {
    if (this.#down) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: target.hostname, port: Number(target.port) });
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => {
        this.#sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Resets every open connection and refuses new ones until up(). */
  down(): void {
    this.#down = true;
    for (const s of this.#sockets) s.resetAndDestroy();
  }

  up(): void {
    this.#down = false;
  }

  async stop(): Promise<void> {
    this.down();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The kubeconfig at `path`, pointed at this relay (the certificate still names 127.0.0.1). */
  kubeConfigVia(path: string): KubeConfig {
    const original = new KubeConfig();
    original.loadFromFile(path);
    const cluster = original.getCurrentCluster()!;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ ...cluster, server: `https://127.0.0.1:${this.port}` }],
      users: original.getUsers(),
      contexts: original.getContexts(),
      currentContext: original.getCurrentContext(),
    });
    return kc;
  }
}
