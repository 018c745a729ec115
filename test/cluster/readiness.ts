// Bounded waiting during start-up: free ports, health probes, and a poll loop
// that gives up at a deadline or as soon as a component it depends on died.
import { get as httpGet } from 'node:http';
import { freePort } from '../support/free-port.js';
import { ClusterStartError } from './errors.js';
import { type Component, delay, logTail } from './processes.js';

export interface Deadline {
  readonly started: number;
  readonly at: number;
}

/** A port the kernel just handed out on 127.0.0.1; free again when we return. */

/** `count` different free ports (the kernel may hand out a just-closed one again). */
export async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let attempt = 0; ports.size < count && attempt < count * 10; attempt++) ports.add(await freePort());
  if (ports.size < count) throw new ClusterStartError(`could not find ${count} free loopback ports`);
  return [...ports];
}

/** True for a 200 answer to a plain-HTTP GET (etcd's /health). */
export function httpGetOk(url: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

/**
 * Polls `check` until it returns true: at most every `intervalMs` (slower after
 * the first few seconds), at most until the deadline, and fails at once with
 * the log of any watched component that exited.
 */
export async function waitUntil(
  what: string,
  deadline: Deadline,
  watched: readonly Component[],
  check: () => Promise<boolean>,
  intervalMs = 250,
): Promise<void> {
  let lastError = '';
  const maxAttempts = Math.ceil((deadline.at - Date.now()) / intervalMs) + 1;
  for (let attempt = 0; attempt < maxAttempts && Date.now() < deadline.at; attempt++) {
    for (const c of watched) {
      if (c.hasExited()) {
        throw new ClusterStartError(`${c.name} exited while waiting for ${what}:\n${logTail(c)}`);
      }
    }
    try {
      if (await check()) return;
      lastError = '';
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await delay(attempt < 20 ? intervalMs : intervalMs * 4);
  }
  const tails = watched.map((c) => `--- ${c.name} ---\n${logTail(c, 15)}`).join('\n');
  throw new ClusterStartError(
    `timed out after ${Date.now() - deadline.started}ms waiting for ${what}` +
      `${lastError ? ` (last error: ${lastError})` : ''}\n${tails}`,
  );
}
