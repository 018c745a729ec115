// A stand-in for the web site a proxy masks as, on 127.0.0.1. It records every byte each connection
// sends, and answers like a small web server: a connection that opens with a TLS record gets a real
// TLS handshake (self-signed certificate made at start with the openssl command) and an HTTP
// response inside; anything else gets a plain-text HTTP 400. Tests compare what the mask site
// received with what the prober sent, byte for byte.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { duplexPair } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { eventually } from './http-get.js';

/** What a prober reads from the mask site over plain TCP. */
export const MASK_PLAIN_ANSWER = 'HTTP/1.1 400 Bad Request\r\nServer: mask-site\r\nContent-Length: 0\r\n\r\n';
/** The body of the HTTP answer the mask site sends inside TLS. */
export const MASK_TLS_BODY = 'hello from the mask site';

export interface MaskConnection {
  /** Every byte received, in order. */
  readonly received: Buffer;
  readonly closed: boolean;
}

export interface MaskServer {
  readonly port: number;
  /** PEM of the self-signed certificate (CN example.com). */
  readonly certificate: string;
  readonly connections: readonly MaskConnection[];
  /** Connections open now. */
  open(): number;
  stop(): Promise<void>;
}

/**
 * Resolves once a connection the mask site took after its first `since` received exactly `bytes`
 * (the proxy passed a failed handshake on unchanged); throws after `timeoutMs`.
 */
export function maskReceived(
  mask: MaskServer,
  bytes: Buffer,
  since: number,
  timeoutMs?: number,
): Promise<true> {
  return eventually(
    async () => (mask.connections.slice(since).some((c) => c.received.equals(bytes)) ? true : undefined),
    timeoutMs,
  );
}

export function makeSelfSignedCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mtkube-mask-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=example.com',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    return {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Recorded {
  chunks: Buffer[];
  closed: boolean;
}

export async function startMaskServer(): Promise<MaskServer> {
  const { key, cert } = makeSelfSignedCertificate();
  const records: Recorded[] = [];
  const sockets = new Set<Socket>();

  const serveTls = (raw: Socket, first: Buffer): void => {
    const [outer, inner] = duplexPair();
    outer.on('data', (d: Buffer) => raw.write(d));
    outer.on('error', () => {});
    raw.on('data', (d: Buffer) => outer.write(d));
    raw.on('close', () => outer.destroy());
    const tls = new TLSSocket(inner, { isServer: true, key, cert });
    tls.on('error', () => raw.destroy());
    tls.on('data', () => {
      tls.write(
        `HTTP/1.1 200 OK\r\nServer: mask-site\r\nContent-Length: ${MASK_TLS_BODY.length}\r\n\r\n${MASK_TLS_BODY}`,
      );
    });
    outer.write(first);
  };

  const server = createServer({ allowHalfOpen: true }, (raw) => {
    sockets.add(raw);
    const rec: Recorded = { chunks: [], closed: false };
    records.push(rec);
    raw.on('error', () => {});
    raw.on('close', () => {
      rec.closed = true;
      sockets.delete(raw);
    });
    raw.on('data', (d: Buffer) => rec.chunks.push(Buffer.from(d)));
    raw.on('end', () => raw.end());
    raw.once('data', (first: Buffer) => {
      if (first[0] === 0x16) serveTls(raw, first);
      else raw.write(MASK_PLAIN_ANSWER);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    certificate: cert,
    get connections(): readonly MaskConnection[] {
      return records.map((r) => ({ received: Buffer.concat(r.chunks), closed: r.closed }));
    },
    open: () => sockets.size,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
