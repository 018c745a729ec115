// Moves bytes both ways between two sockets, transforming them on the way, with backpressure:
// when one side cannot keep up, the other side stops being read until it drains. Nothing is
// queued beyond the sockets' own high-water marks.
import type { Socket } from 'node:net';

/** Returns the bytes to forward (possibly the same buffer), or undefined to forward nothing. */
export type Transform = (chunk: Buffer) => Buffer | undefined;

function forward(from: Socket, to: Socket, transform: Transform, onError: (err: unknown) => void): void {
  from.on('data', (chunk: Buffer) => {
    let out: Buffer | undefined;
    try {
      out = transform(chunk);
    } catch (err) {
      from.pause();
      onError(err);
      return;
    }
    if (out !== undefined && out.length > 0 && !to.write(out)) from.pause();
  });
  to.on('drain', () => from.resume());
}

/**
 * A transform that throws (a peer's bytes that do not parse, e.g. a bad TLS record) stops that
 * direction and is reported to `onError`; the caller closes both sockets.
 */
export function pump(
  client: Socket,
  upstream: Socket,
  clientToUpstream: Transform,
  upstreamToClient: Transform,
  onError: (err: unknown) => void = () => {
    client.destroy();
    upstream.destroy();
  },
): void {
  forward(client, upstream, clientToUpstream, onError);
  forward(upstream, client, upstreamToClient, onError);
  client.resume();
  upstream.resume();
}
