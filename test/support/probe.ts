// What an active prober does: open a TCP connection to 127.0.0.1, send some bytes, and read
// whatever comes back until an expected answer arrives, the peer closes, or time is up.
import { connect } from 'node:net';

export interface ProbeResult {
  /** Every byte the server sent. */
  readonly received: Buffer;
  /** The server closed the connection (rather than our timeout ending the probe). */
  readonly closedByPeer: boolean;
  /** From the last byte we sent to the end of the probe. */
  readonly elapsedMs: number;
}

export interface ProbeOptions {
  /** Stop as soon as the received bytes contain this text. */
  readonly until?: string;
  readonly timeoutMs?: number;
  /** Sent in these pieces, with a pause between (slow senders). */
  readonly pieces?: readonly Buffer[];
  readonly pauseMs?: number;
  /** Half-close (FIN) after sending. */
  readonly end?: boolean;
}

export async function probe(port: number, bytes: Buffer, opts: ProbeOptions = {}): Promise<ProbeResult> {
  const socket = connect({ host: '127.0.0.1', port, noDelay: true, allowHalfOpen: true });
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const chunks: Buffer[] = [];
  let closedByPeer = false;
  const finished = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, opts.timeoutMs ?? 5000);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      if (opts.until !== undefined && Buffer.concat(chunks).includes(opts.until)) {
        clearTimeout(timer);
        resolve();
      }
    });
    const peerClosed = (): void => {
      closedByPeer = true;
      clearTimeout(timer);
      resolve();
    };
    socket.on('end', peerClosed);
    socket.on('close', peerClosed);
  });
  for (const piece of opts.pieces ?? [bytes]) {
    if (socket.destroyed) break;
    socket.write(piece);
    if (opts.pieces) await new Promise((r) => setTimeout(r, opts.pauseMs ?? 50));
  }
  if (opts.end) socket.end();
  const sentAt = Date.now();
  await finished;
  socket.destroy();
  return { received: Buffer.concat(chunks), closedByPeer, elapsedMs: Date.now() - sentAt };
}
