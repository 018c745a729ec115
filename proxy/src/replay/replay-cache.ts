// Remembers recent authenticated handshakes so that a recorded one replayed by a prober is refused
// (docs/protocol.md §2.6, §4.9). One cache lives in the primary and serves every worker, so a
// replay that lands on another worker, or after a restart (replay/replay-file.ts), is still caught.
// Only handshakes that a secret opened are checked and remembered: a client without a secret can
// neither fill the cache nor push anything out of it. The structure and its capacity are described
// in replay/replay-window.ts.

import type { Logger } from '../log/logger.js';
import { throttled } from '../log/throttle.js';
import { ReplayFile } from './replay-file.js';
import { type ReplayVerdict, ReplayWindow } from './replay-window.js';

export interface ReplayFigures {
  readonly entries: number;
  readonly capacity: number;
  readonly oldestAgeSeconds: number;
  readonly bytes: number;
  /** Handshakes refused because the cache was full (fail closed). */
  readonly refusedFull: number;
  /** Entries that could not be written to the file. */
  readonly unsaved: number;
}

const LOG_EVERY_MS = 60_000;

export class ReplayService {
  readonly #window: ReplayWindow;
  readonly #file: ReplayFile | undefined;
  #refusedFull = 0;
  readonly #reportFull: () => void;

  private constructor(window: ReplayWindow, file: ReplayFile | undefined, log: Logger) {
    this.#window = window;
    this.#file = file;
    this.#reportFull = throttled(LOG_EVERY_MS, () =>
      log.error('replay cache full: new handshakes are refused until entries expire', {
        capacity: window.capacity,
        refused: this.#refusedFull,
        fix: 'raise REPLAY_CACHE_SIZE (16-32 bytes per entry) or shorten REPLAY_WINDOW',
      }),
    );
  }

  /** `dataDir` undefined: memory only. */
  static async start(
    opts: { capacity: number; windowMs: number; dataDir: string | undefined },
    log: Logger,
  ): Promise<ReplayService> {
    const window = new ReplayWindow({ capacity: opts.capacity, windowMs: opts.windowMs });
    const file = opts.dataDir === undefined ? undefined : await ReplayFile.open(opts.dataDir, window, log);
    return new ReplayService(window, file, log);
  }

  /** Checks and remembers the fingerprint (two 32-bit words) of an authenticated handshake. */
  check(lo: number, hi: number): ReplayVerdict {
    const verdict = this.#window.checkFingerprint(lo, hi);
    if (verdict === 'fresh') this.#file?.append(lo, hi, Date.now());
    else if (verdict === 'full') {
      this.#refusedFull++;
      this.#reportFull();
    }
    return verdict;
  }

  figures(): ReplayFigures {
    return {
      entries: this.#window.size,
      capacity: this.#window.capacity,
      oldestAgeSeconds: this.#window.oldestAgeMs() / 1000,
      bytes: this.#window.bytes,
      refusedFull: this.#refusedFull,
      unsaved: this.#file?.figures.unsaved ?? 0,
    };
  }

  async stop(): Promise<void> {
    await this.#file?.close();
  }
}
