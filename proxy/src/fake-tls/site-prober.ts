// Measures a real site: one TCP connection to the mask target, one Telegram-like ClientHello (the
// apps' own two shapes, which are browser-like by design and are what a censor replays at us), and
// everything the site sends until it falls quiet. The handshake is never finished: the site sees a
// client that went away after its hello, as happens all the time on the web.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { duplexPair } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { buildClientHello } from './client.js';
import { type FlightSample, parseServerFlight, type TimedChunk } from './server-flight.js';
import type { HelloKind } from './site-profile.js';

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  /** Put into the SNI. */
  readonly domain: string;
}

export interface ProbeOptions {
  /** The whole attempt, connect included. */
  readonly timeoutMs: number;
  /** The flight is over once nothing arrived for this long after the first encrypted record. */
  readonly quietMs: number;
}

export const DEFAULT_PROBE_OPTIONS: ProbeOptions = { timeoutMs: 5000, quietMs: 400 };
/** A first flight is never this big; a site sending more is not waited for. */
const MAX_FLIGHT_BYTES = 128 * 1024;

export class ProbeError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ProbeError';
    this.code = code;
  }
}

/** One hello, one answer. Rejects with ProbeError (or FlightParseError) when there is none. */
export function probeSite(
  target: ProbeTarget,
  kind: HelloKind,
  options = DEFAULT_PROBE_OPTIONS,
): Promise<FlightSample> {
  const { hello } = buildClientHello({
    secret: randomBytes(16),
    domain: target.domain,
    now: Math.floor(Date.now() / 1000),
    random: randomBytes,
    shape: kind,
  });
  return new Promise((resolve, reject) => {
    const chunks: TimedChunk[] = [];
    let total = 0;
    let sentAt = 0;
    let quiet: NodeJS.Timeout | undefined;
    let settled = false;
    const socket: Socket = connect({ host: target.host, port: target.port });
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(quiet);
      socket.destroy();
      if (err !== undefined && chunks.length === 0) {
        reject(err);
        return;
      }
      try {
        resolve(parseServerFlight(chunks, 0));
      } catch (parseErr) {
        reject(parseErr);
      }
    };
    const deadline = setTimeout(
      () => finish(new ProbeError('ERR_PROBE_TIMEOUT', `no answer within ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    socket.setNoDelay(true);
    socket.on('connect', () => {
      sentAt = performance.now();
      socket.write(hello);
    });
    socket.on('data', (data: Buffer) => {
      chunks.push({ at: performance.now() - sentAt, data });
      total += data.length;
      if (total >= MAX_FLIGHT_BYTES) {
        finish();
        return;
      }
      clearTimeout(quiet);
      quiet = setTimeout(() => finish(), options.quietMs);
    });
    socket.on('error', (err) => finish(new ProbeError('ERR_PROBE_CONNECT', err.message)));
    socket.on('close', () => finish(new ProbeError('ERR_PROBE_CLOSED', 'the site closed the connection')));
  });
}

/** What the site's answer to a page request looked like after the handshake. */
export interface ResponseSample {
  /** Payload sizes of the site's application-data records, in order (at most 512). */
  readonly records: readonly number[];
  /** Milliseconds between socket reads that brought records (at most 256), the site's pacing. */
  readonly gapsMs: readonly number[];
}

const MAX_RESPONSE_BYTES = 512 * 1024;

/**
 * Finishes a real TLS handshake with the site (node:tls; the certificate is not checked: only the
 * shape matters) and asks for `/` as a browser would, recording the records of the answer and the
 * gaps between them as they arrive on the wire.
 */
export function measureResponse(
  target: ProbeTarget,
  options = DEFAULT_PROBE_OPTIONS,
): Promise<ResponseSample> {
  return new Promise((resolve, reject) => {
    const raw: Socket = connect({ host: target.host, port: target.port });
    const [ours, theirs] = duplexPair();
    const arrivals: { at: number; data: Buffer }[] = [];
    let secured = false;
    let total = 0;
    let settled = false;
    let quiet: NodeJS.Timeout | undefined;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(quiet);
      raw.destroy();
      tls.destroy();
      if (!secured) {
        reject(err ?? new ProbeError('ERR_PROBE_CLOSED', 'the site closed before the handshake ended'));
        return;
      }
      resolve(responseShape(arrivals));
    };
    const deadline = setTimeout(
      () => finish(new ProbeError('ERR_PROBE_TIMEOUT', 'no page in time')),
      options.timeoutMs,
    );
    raw.on('data', (data: Buffer) => {
      if (secured && total < MAX_RESPONSE_BYTES) {
        arrivals.push({ at: performance.now(), data });
        total += data.length;
        clearTimeout(quiet);
        quiet = setTimeout(() => finish(), options.quietMs);
      }
      theirs.write(data);
    });
    theirs.on('data', (data: Buffer) => raw.write(data));
    theirs.on('error', () => {});
    raw.on('error', (err) => finish(new ProbeError('ERR_PROBE_CONNECT', err.message)));
    raw.on('close', () => finish());
    const tls = tlsConnect({
      socket: ours,
      servername: target.domain,
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
    });
    tls.on('error', (err) => finish(new ProbeError('ERR_PROBE_TLS', err.message)));
    tls.on('data', () => {});
    tls.once('secureConnect', () => {
      secured = true;
      tls.write(
        `GET / HTTP/1.1\r\nHost: ${target.domain}\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html,*/*\r\nConnection: close\r\n\r\n`,
      );
    });
  });
}

/** Record sizes and read-to-read gaps (of reads that completed at least one record). */
function responseShape(arrivals: readonly { at: number; data: Buffer }[]): ResponseSample {
  const records: number[] = [];
  const gaps: number[] = [];
  let pending: Buffer = Buffer.alloc(0);
  let lastAt: number | undefined;
  for (const { at, data } of arrivals) {
    pending = pending.length === 0 ? data : Buffer.concat([pending, data]);
    let completed = 0;
    while (pending.length >= 5 && pending.length >= 5 + pending.readUInt16BE(3)) {
      const len = pending.readUInt16BE(3);
      if (pending[0] === 0x17 && records.length < 512) records.push(len);
      pending = pending.subarray(5 + len);
      completed++;
    }
    if (completed > 0) {
      if (lastAt !== undefined && gaps.length < 256) gaps.push(Math.round((at - lastAt) * 100) / 100);
      lastAt = at;
    }
  }
  return { records, gapsMs: gaps };
}
