// Moves bytes both ways between two sockets, transforming them on the way, with backpressure:
// when one side cannot keep up, the other side stops being read until it drains. Nothing is
// queued beyond the sockets' own high-water marks.
import type { Socket } from 'node:net';

/** Returns the bytes to forward (possibly the same buffer), or undefined to forward nothing. */
export type Transform = (chunk: Buffer) => Buffer | undefined;

function forward(from: Socket, to: Socket, transform: Transform): void {
  from.on('data', (chunk: Buffer) => {
    const out = transform(chunk);
    if (out !== undefined && out.length > 0 && !to.write(out)) from.pause();
  });
  to.on('drain', () => from.resume());
}

export function pump(
  client: Socket,
  upstream: Socket,
  clientToUpstream: Transform,
  upstreamToClient: Transform,
): void {
  forward(client, upstream, clientToUpstream);
  forward(upstream, client, upstreamToClient);
  client.resume();
  upstream.resume();
}
