// An HTTP front for the test API server on 127.0.0.1, one per operator replica, that can stall
// that replica's Lease requests (never answered, as from an overloaded or partitioned API server)
// while everything else it asks goes through. The operator talks plain HTTP to it; it talks to the
// API server over TLS with the admin kubeconfig's credentials.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { performance } from 'node:perf_hooks';
import { KubeConfig } from '@kubernetes/client-node';

export interface StalledRequest {
  readonly method: string;
  readonly path: string;
  /** How long the client waited before giving up (undefined: still waiting). */
  heldMs: number | undefined;
}

export class LeaseStallProxy {
  stallLeases = false;
  readonly stalled: StalledRequest[] = [];
  readonly #held = new Set<ServerResponse>();
  private constructor(
    readonly server: Server,
    readonly port: number,
  ) {}

  static async start(adminKubeconfigPath: string): Promise<LeaseStallProxy> {
    const admin = new KubeConfig();
    admin.loadFromFile(adminKubeconfigPath);
    const target = new URL(admin.getCurrentCluster()!.server);
    const tls: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string } = {};
    await admin.applyToHTTPSOptions(tls as never);
    let self: LeaseStallProxy | undefined;
    const server = createServer((req, res) => self?.handle(req, res, target, tls));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new LeaseStallProxy(server, (server.address() as { port: number }).port);
    return self;
  }

  handle(
    req: IncomingMessage,
    res: ServerResponse,
    target: URL,
    tls: { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string },
  ): void {
    const path = req.url ?? '/';
    if (this.stallLeases && path.includes('/leases')) {
      const record: StalledRequest = { method: req.method ?? 'GET', path, heldMs: undefined };
      const since = performance.now();
      this.stalled.push(record);
      this.#held.add(res);
      // Never answered: only the client's own deadline (or stop()) ends it.
      res.once('close', () => {
        record.heldMs = performance.now() - since;
        this.#held.delete(res);
      });
      req.resume();
      return;
    }
    const headers = { ...req.headers };
    delete headers.host;
    const upstream = httpsRequest(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path,
        headers,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        // A watch answers headers first and events later: pass the headers on at once, as the API
        // server does, or the client waits for its watch to open until the first event.
        res.flushHeaders();
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }

  /**
   * A kubeconfig for a replica: plain HTTP to this front, no credentials of its own (client-node
   * refuses http:// unless skipTLSVerify is set; there is no TLS to verify).
   */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'front', server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true }],
      users: [{ name: 'front' }],
      contexts: [{ name: 'front', cluster: 'front', user: 'front' }],
      currentContext: 'front',
    });
    return kc;
  }

  async stop(): Promise<void> {
    for (const res of this.#held) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
