// The primary's HTTP endpoints: the official /stats (allow-listed, local by default) and the
// Prometheus /metrics with /healthz and /readyz for Kubernetes probes.
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { Registry } from 'prom-client';
import type { MemoryFigures } from './official-stats.js';

export function allowList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr, bits] = cidr.split('/');
    const family = isIP(addr ?? '') === 6 ? 'ipv6' : 'ipv4';
    const prefix = bits === undefined ? (family === 'ipv6' ? 128 : 32) : Number(bits);
    list.addSubnet(addr!, prefix, family);
  }
  return list;
}

function isAllowed(list: BlockList, remote: string | undefined): boolean {
  if (remote === undefined) return false;
  // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
  const v4 = remote.startsWith('::ffff:') ? remote.slice(7) : remote;
  return list.check(v4, isIP(v4) === 6 ? 'ipv6' : 'ipv4');
}

function listen(server: Server, port: number, host: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: host ?? '::', ipv6Only: false }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function reply(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export interface StatsEndpointOptions {
  readonly port: number;
  readonly bind: string | undefined;
  readonly allow: BlockList;
  readonly render: () => Promise<string>;
  readonly onQuery: () => void;
}

/** GET /stats like the official proxy: 404 to anyone not allowed, 501 for other methods. */
export async function startStatsEndpoint(opts: StatsEndpointOptions): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!isAllowed(opts.allow, req.socket.remoteAddress)) return reply(res, 404, 'Not Found\n');
    if (req.method !== 'GET') return reply(res, 501, 'Not Implemented\n');
    if ((req.url ?? '').split('?')[0] !== '/stats') return reply(res, 404, 'Not Found\n');
    opts.onQuery();
    opts.render().then(
      (text) => reply(res, 200, text),
      () => reply(res, 500, 'stats unavailable\n'),
    );
  });
  await listen(server, opts.port, opts.bind);
  return server;
}

export interface MetricsEndpointOptions {
  readonly port: number;
  readonly bind: string | undefined;
  readonly registry: Registry;
  /** Who may read /metrics (METRICS_ALLOW); others get 404 like an unknown path. */
  readonly allow: BlockList;
  /** undefined when ready, otherwise why not (shown in the /readyz body). */
  readonly notReadyReason: () => string | undefined;
}

export async function startMetricsEndpoint(opts: MetricsEndpointOptions): Promise<Server> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/healthz') return reply(res, 200, 'ok\n');
    if (path === '/readyz') {
      const reason = opts.notReadyReason();
      return reason === undefined ? reply(res, 200, 'ready\n') : reply(res, 503, `not ready: ${reason}\n`);
    }
    if (path === '/metrics') {
      // User names, counters and the shape of an MTProxy's metrics are a fingerprint: not for
      // everyone. The probes stay open: the kubelet may probe from a public node address.
      if (!isAllowed(opts.allow, req.socket.remoteAddress)) return reply(res, 404, 'Not Found\n');
      opts.registry.metrics().then(
        (text) => reply(res, 200, text, opts.registry.contentType),
        (err: Error) => reply(res, 500, `metrics unavailable: ${err.message}\n`),
      );
      return;
    }
    reply(res, 404, 'Not Found\n');
  });
  await listen(server, opts.port, opts.bind);
  return server;
}

/** Memory figures of this process and the machine, read from /proc where it exists. */
export async function memoryFigures(): Promise<MemoryFigures> {
  const kb = (text: string, key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  };
  const [status, meminfo] = await Promise.all([
    readFile('/proc/self/status', 'utf8').catch(() => ''),
    readFile('/proc/meminfo', 'utf8').catch(() => ''),
  ]);
  const swapTotal = kb(meminfo, 'SwapTotal');
  return {
    vmsize: kb(status, 'VmSize'),
    vmrss: kb(status, 'VmRSS') || process.memoryUsage.rss(),
    vmdata: kb(status, 'VmData'),
    memfree: kb(meminfo, 'MemFree'),
    memcached: kb(meminfo, 'Cached'),
    swapUsed: swapTotal - kb(meminfo, 'SwapFree'),
    swapTotal,
  };
}
