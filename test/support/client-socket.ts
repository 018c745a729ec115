// The socket plumbing our packet-level test clients share (obfs2-client.ts, fake-tls-socket-client.ts,
// obfs2-stream-client.ts): opening a connection to 127.0.0.1 with a deadline, and an inbox that
// hands decoded packets to receive() in order, remembers the first failure and notices the close.
import { connect, type Socket } from 'node:net';
import type { Packet } from '../../proxy/src/protocol/transports.js';

/**
 * Connects to 127.0.0.1:`port` with Nagle off; rejects on error or after `timeoutMs`. Later socket
 * errors are swallowed: the close that follows them is what tests observe. `label` starts messages.
 */
export async function openTestSocket(
  port: number,
  timeoutMs: number,
  label: string,
  localAddress?: string,
): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port, localAddress, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${label}: no connection to port ${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  socket.on('error', () => {});
  return socket;
}

/** Packets a client has decoded, waiting for receive(); fails every wait once the socket closes. */
export class PacketInbox {
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;
  readonly #label: string;
  readonly #queue: Packet[] = [];
  #waiter: ((p: Packet | Error) => void) | undefined;
  #failure: Error | undefined;
  #isClosed = false;

  constructor(socket: Socket, label: string) {
    this.#label = label;
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#isClosed = true;
        this.fail(new Error(`${label}: connection closed`));
        resolve();
      }),
    );
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** True once something went wrong: further data is not worth decoding. */
  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /** Hands a decoded packet to the pending receive(), or queues it. */
  push(p: Packet): void {
    if (this.#waiter) this.#waiter(p);
    else this.#queue.push(p);
  }

  /** Records the first failure; the pending and every later receive() rejects with it. */
  fail(err: Error): void {
    this.#failure ??= err;
    this.#waiter?.(this.#failure);
  }

  /** The next packet; rejects on timeout, close or failure. One receive() at a time. */
  receive(timeoutMs: number): Promise<Packet> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#waiter) return Promise.reject(new Error(`${this.#label}: receive() already pending`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new Error(`${this.#label}: no packet within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = (p) => {
        clearTimeout(timer);
        this.#waiter = undefined;
        if (p instanceof Error) reject(p);
        else resolve(p);
      };
    });
  }

  /** Resolves when the socket has closed; rejects after the timeout. */
  waitForClose(timeoutMs: number): Promise<void> {
    if (this.#isClosed) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.#label}: still open after ${timeoutMs} ms`)),
        timeoutMs,
      );
      void this.closed.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
