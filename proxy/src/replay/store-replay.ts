// The replay cache shared by every proxy using the store: one atomic SET NX PX per handshake that
// this pod's own cache (in front) has not seen, so a handshake recorded at one replica and
// replayed to another is refused. Checks of one event-loop turn go out pipelined together.
// Store down or slow: STATE_REPLAY_FALLBACK decides: `local` (this pod's cache only, which has
// already remembered the handshake) or `refuse` (fail closed). Either way it is counted.

import type { StateStore } from '../state/state-store.js';
import type { ReplayVerdict } from './replay-window.js';

export class StoreReplay {
  readonly #store: StateStore;
  readonly #windowMs: number;

  constructor(store: StateStore, windowMs: number) {
    this.#store = store;
    this.#windowMs = windowMs;
  }

  /** Claims a fingerprint the local cache found fresh; 'replay' when another proxy had it. */
  async claim(lo: number, hi: number): Promise<ReplayVerdict> {
    // The 64-bit fingerprint in 16 hex digits, high word first (no BigInt per handshake).
    const id = hex8(hi) + hex8(lo);
    try {
      const reply = await this.#store.command([
        'SET',
        this.#store.key('r', id),
        '1',
        'NX',
        'PX',
        this.#windowMs,
      ]);
      return reply === null ? 'replay' : 'fresh';
    } catch {
      this.#store.fellBack('replay');
      return this.#store.settings.replayFallback === 'local' ? 'fresh' : 'replay';
    }
  }
}

function hex8(word: number): string {
  return (word >>> 0).toString(16).padStart(8, '0');
}
