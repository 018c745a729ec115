// Measures a real site: one TCP connection to the mask target, one Telegram-like ClientHello (the
// apps' own two shapes, which are browser-like by design and are what a censor replays at us), and
// everything the site sends until it falls quiet. The handshake is never finished: the site sees a
// client that went away after its hello, as happens all the time on the web.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { buildClientHello } from '../protocol/fake-tls-client.js';
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
