// The operator's own endpoints: /metrics (Prometheus), /healthz (the process works), /readyz (it
// can do its job: CRD and permissions found, and caches synced if it leads).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthSource {
  healthy(): { ok: boolean; detail: string };
  ready(): { ok: boolean; detail: string };
}

export interface OperatorHttpServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHttpServer(
  registry: Registry,
  health: HealthSource,
  port: number,
  host: string,
): Promise<OperatorHttpServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (check: { ok: boolean; detail: string }): void => {
      res.writeHead(check.ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${check.ok ? 'ok' : 'not ok'}: ${check.detail}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz' || path === '/livez') return answer(health.healthy());
    if (path === '/readyz') return answer(health.ready());
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`metrics failed: ${err.message}\n`);
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
