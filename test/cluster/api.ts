// A minimal HTTPS client for the control plane's own start-up checks (health
// endpoints, the fake node), so starting a cluster does not fork kubectl for
// every poll. Tests use kubectl, as a person would.
import { request } from 'node:https';

export interface ApiConnection {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface ApiResponse {
  readonly status: number;
  readonly body: string;
}

export function apiRequest(
  conn: ApiConnection,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  timeoutMs = 5_000,
): Promise<ApiResponse> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, conn.server),
      {
        method,
        ca: conn.caPem,
        cert: conn.certPem,
        key: conn.keyPem,
        timeout: timeoutMs,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
          : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out after ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}
