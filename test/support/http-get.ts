// A small HTTP GET for tests, with a choice of local address (to test allow-lists from 127.0.0.x).
import { request } from 'node:http';

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

export function httpGet(
  url: string,
  opts: { localAddress?: string; timeoutMs?: number; method?: string } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: opts.method ?? 'GET', localAddress: opts.localAddress, timeout: opts.timeoutMs ?? 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Polls `probe` until it returns a value or the time is up; every attempt is bounded. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
  stepMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
}

/** Reads one sample (`name{labels} value`) from Prometheus text; undefined when absent. */
export function sample(metrics: string, series: string): number | undefined {
  for (const line of metrics.split('\n')) {
    if (line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    if (line.slice(0, sp) === series) return Number(line.slice(sp + 1));
  }
  return undefined;
}

/** Parses the official /stats text into key -> value, keeping the order of keys. */
export function parseStats(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const tab = line.indexOf('\t');
    map.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return map;
}

/** The proxy's Prometheus text (METRICS_PORT on 127.0.0.1). */
export async function metrics(proxy: { readonly metricsPort: number }): Promise<string> {
  return (await httpGet(`http://127.0.0.1:${proxy.metricsPort}/metrics`)).body;
}

/** The proxy's official tab-separated /stats (STATS_PORT on 127.0.0.1), by name. */
export async function stats(proxy: { readonly statsPort: number }): Promise<Map<string, string>> {
  return parseStats((await httpGet(`http://127.0.0.1:${proxy.statsPort}/stats`)).body);
}
