// The per-address connection limit (MAX_CONNECTIONS_PER_IP). It counts open connections per client
// address in this worker process. IPv6 clients are counted per /64, the block one subscriber gets,
// since any single address of it costs an attacker nothing.
import { isIP } from 'node:net';
import { normalizeAddress } from '../protocol/addresses.js';

/** The key an address is counted under: IPv4 as is, IPv6 by its first 64 bits. */
export function limitKey(address: string): string {
  const a = normalizeAddress(address);
  if (isIP(a) !== 6) return a;
  const [head = '', tail] = a.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

export class ConnectionsPerIp {
  readonly #open = new Map<string, number>();
  readonly #limit: number;

  /** `limit` 0: no limit (nothing is counted). */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** A release function when `address` may open one more connection, else undefined. */
  acquire(address: string): (() => void) | undefined {
    if (this.#limit === 0) return noop;
    const key = limitKey(address);
    const n = this.#open.get(key) ?? 0;
    if (n >= this.#limit) return undefined;
    this.#open.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(key) ?? 1) - 1;
      if (left <= 0) this.#open.delete(key);
      else this.#open.set(key, left);
    };
  }

  /** Addresses with at least one open connection. */
  get size(): number {
    return this.#open.size;
  }
}

const noop = (): void => {};
