// TLS_RECORD_TIMING=site: the records we send to a fake-TLS client leave in bursts spaced like the
// site's own answer to a page request (the gaps measured by site-prober.ts measureResponse), the
// way mtg's "doppelganger" delays records. It works by corking the client socket when data is
// written and uncorking it after a gap drawn from the site's gaps: the held bytes stay in the
// socket's own buffer, so write() still reports backpressure and nothing grows beyond the
// socket's high-water mark. Off by default: it costs throughput (npm run bench shows how much).
import type { Socket } from 'node:net';
import type { RandomSource } from '../protocol/obfuscated2.js';

/** A site that pauses longer (long polling, a slow page) must not stall a proxy connection. */
const MAX_GAP_MS = 50;

export class RecordPacer {
  readonly #socket: Socket;
  readonly #gaps: readonly number[];
  readonly #random: RandomSource;
  #holding = false;

  /** `gapsMs`: the site's measured gaps; those above MAX_GAP_MS are left out. */
  constructor(socket: Socket, gapsMs: readonly number[], random: RandomSource) {
    this.#socket = socket;
    this.#gaps = gapsMs.filter((g) => g <= MAX_GAP_MS);
    this.#random = random;
  }

  /** Whether there is anything to follow: a site whose records all came at once has no pacing. */
  get active(): boolean {
    return this.#gaps.some((g) => g >= 1);
  }

  /** Call before each write to the client: the first write of a burst starts the gap. */
  beforeWrite(): void {
    if (this.#holding || this.#gaps.length === 0) return;
    const gap = this.#gaps[this.#random(2).readUInt16LE(0) % this.#gaps.length]!;
    if (gap < 1) return;
    this.#holding = true;
    this.#socket.cork();
    setTimeout(() => {
      this.#holding = false;
      if (!this.#socket.destroyed) this.#socket.uncork();
    }, gap).unref();
  }
}
