// A stand-in for the real web site behind a fake-TLS domain, on 127.0.0.1: a node:tls server with
// a certificate chain made at start by the openssl command (as many intermediates and as large a
// key as the test asks, so the encrypted first flight has the size the test wants), and a record
// pattern the test chooses: the largest record it writes, and whether the ServerHello goes out in
// its own packet before the ChangeCipherSpec and the encrypted records. It serves HTTP/1.1 inside,
// and counts the connections it got.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { duplexPair } from 'node:stream';
import { createSecureContext, TLSSocket } from 'node:tls';

export interface SiteChain {
  /** 'ec' (P-256) or RSA with this many bits. */
  readonly key: 'ec' | 2048 | 4096;
  /** Intermediate CAs between the root and the leaf (sent with the leaf). */
  readonly intermediates: number;
}

export interface SiteOptions {
  /** Certificate chains by SNI; `default` for any other name (and no SNI). */
  readonly chains: { readonly default: SiteChain } & Readonly<Record<string, SiteChain>>;
  /** The largest TLS record the site writes (node's setMaxSendFragment); 16384 by default. */
  readonly maxRecord?: number;
  /** Write the ServerHello record alone, then the rest after this many ms (a separate packet). */
  readonly helloAloneMs?: number;
  /** The page: `records` writes of `size` bytes, `gapMs` apart (default one short write). */
  readonly page?: { readonly records: number; readonly size: number; readonly gapMs: number };
}

export interface TlsSite {
  readonly port: number;
  /** Connections accepted so far. */
  connections(): number;
  stop(): Promise<void>;
}

function openssl(args: readonly string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

function newKey(path: string, key: SiteChain['key']): void {
  if (key === 'ec')
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', path]);
  else openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${key}`, '-out', path]);
}

/** A root, `intermediates` CAs under it and a leaf for `cn`; returns the leaf key and the chain PEM. */
export function makeChain(cn: string, chain: SiteChain): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mtkube-site-'));
  try {
    const caExt = join(dir, 'ca.ext');
    writeFileSync(caExt, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
    const leafExt = join(dir, 'leaf.ext');
    writeFileSync(
      leafExt,
      `basicConstraints=CA:FALSE\nsubjectAltName=DNS:${cn}\nextendedKeyUsage=serverAuth\n`,
    );
    newKey(join(dir, 'ca0.key'), chain.key);
    openssl([
      'req',
      '-x509',
      '-new',
      '-key',
      join(dir, 'ca0.key'),
      '-subj',
      '/CN=Stand-in Root',
      '-days',
      '2',
      '-out',
      join(dir, 'ca0.crt'),
    ]);
    const pems: string[] = [];
    let issuer = 'ca0';
    const issue = (name: string, subject: string, ext: string): void => {
      newKey(join(dir, `${name}.key`), chain.key);
      openssl([
        'req',
        '-new',
        '-key',
        join(dir, `${name}.key`),
        '-subj',
        subject,
        '-out',
        join(dir, `${name}.csr`),
      ]);
      openssl([
        'x509',
        '-req',
        '-in',
        join(dir, `${name}.csr`),
        '-CA',
        join(dir, `${issuer}.crt`),
        '-CAkey',
        join(dir, `${issuer}.key`),
        '-CAcreateserial',
        '-days',
        '2',
        '-extfile',
        ext,
        '-out',
        join(dir, `${name}.crt`),
      ]);
    };
    for (let i = 1; i <= chain.intermediates; i++) {
      issue(`ca${i}`, `/CN=Stand-in Intermediate ${i}`, caExt);
      pems.unshift(readFileSync(join(dir, `ca${i}.crt`), 'utf8'));
      issuer = `ca${i}`;
    }
    issue('leaf', `/CN=${cn}`, leafExt);
    return {
      key: readFileSync(join(dir, 'leaf.key'), 'utf8'),
      cert: readFileSync(join(dir, 'leaf.crt'), 'utf8') + pems.join(''),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function startTlsSite(options: SiteOptions): Promise<TlsSite> {
  const made = new Map<string, { key: string; cert: string }>();
  for (const [name, chain] of Object.entries(options.chains)) {
    made.set(name, makeChain(name === 'default' ? 'site.test' : name, chain));
  }
  const sockets = new Set<Socket>();
  let accepted = 0;

  const server = createServer((raw) => {
    accepted++;
    sockets.add(raw);
    raw.on('error', () => {});
    raw.on('close', () => sockets.delete(raw));
    const [outer, inner] = duplexPair();
    let first = true;
    outer.on('data', (d: Buffer) => {
      // The first write of the flight starts with the ServerHello record; split it off if asked.
      if (first && options.helloAloneMs !== undefined && d[0] === 0x16 && d.length > 5) {
        const end = 5 + d.readUInt16BE(3);
        raw.write(d.subarray(0, end));
        const rest = Buffer.from(d.subarray(end));
        setTimeout(() => raw.writable && raw.write(rest), options.helloAloneMs);
      } else {
        raw.write(d);
      }
      first = false;
    });
    outer.on('error', () => {});
    raw.on('data', (d: Buffer) => outer.write(d));
    raw.on('close', () => outer.destroy());
    const fallback = made.get('default')!;
    const tls = new TLSSocket(inner, {
      isServer: true,
      key: fallback.key,
      cert: fallback.cert,
      SNICallback: (name, cb) => {
        const pair = made.get(name) ?? fallback;
        cb(null, createSecureContext({ key: pair.key, cert: pair.cert }));
      },
    });
    if (options.maxRecord !== undefined) tls.setMaxSendFragment(options.maxRecord);
    tls.on('error', () => raw.destroy());
    tls.once('data', () => {
      const page = options.page;
      if (page === undefined) {
        tls.write('HTTP/1.1 200 OK\r\nServer: stand-in\r\nContent-Length: 2\r\n\r\nok');
        return;
      }
      tls.write(`HTTP/1.1 200 OK\r\nServer: stand-in\r\nContent-Length: ${page.records * page.size}\r\n\r\n`);
      let sent = 0;
      const next = (): void => {
        if (sent++ >= page.records || tls.destroyed) return;
        tls.write(Buffer.alloc(page.size, 0x61));
        setTimeout(next, page.gapMs);
      };
      setTimeout(next, page.gapMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    connections: () => accepted,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
