// Opening TCP connections to Telegram with a deadline, trying each address in turn.
import { connect, type Socket } from 'node:net';
import type { HostPort } from './dc-table.js';

export class DialError extends Error {
  readonly code = 'ERR_DIAL';
}

function dialOne(target: HostPort, timeoutMs: number, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port, noDelay: true });
    const fail = (reason: string): void => {
      cleanup();
      socket.destroy();
      reject(new DialError(`${target.host}:${target.port}: ${reason}`));
    };
    const onError = (err: Error): void => fail(err.message);
    const onAbort = (): void => fail('aborted');
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    socket.once('connect', () => {
      cleanup();
      resolve(socket);
    });
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Connect to the first address that answers; the error names every address that failed. */
export async function dial(
  targets: readonly HostPort[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Socket> {
  const failures: string[] = [];
  for (const target of targets) {
    if (signal?.aborted) break;
    try {
      return await dialOne(target, timeoutMs, signal);
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  throw new DialError(failures.length > 0 ? failures.join('; ') : 'no address to try');
}
