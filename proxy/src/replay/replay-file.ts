// Keeps the replay cache across restarts: DATA_DIR/replay-cache.bin, mode 0600, an append-only
// log of 12-byte records (fingerprint low word, high word, Unix seconds; little-endian) after an
// 8-byte magic. New entries are appended once a second, so a crash loses at most a second of them;
// at start the file is read back (expired records skipped) and rewritten compacted, and again
// whenever it holds more than twice the live entries. A missing file is an empty cache; an
// unreadable one is reported and replaced. Writes that fail (full disk) are counted and logged once
// a minute; the cache in memory keeps working, and pending records are bounded.
import { chmod, type FileHandle, mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import { throttled } from '../log/throttle.js';
import type { ReplayWindow } from './replay-window.js';

export const REPLAY_FILE = 'replay-cache.bin';
const MAGIC = Buffer.from('MTKRPL01');
const RECORD = 12;
const FLUSH_MS = 1_000;
const LOG_EVERY_MS = 60_000;
/** Records waiting for the disk at most; beyond, new ones are kept in memory only (and counted). */
const MAX_PENDING = 262_144;
/** Compact when the file holds this many more records than the cache. */
const COMPACT_SLACK = 131_072;

export interface ReplayFileFigures {
  /** Records that could not be written (disk errors, or pending beyond MAX_PENDING). */
  readonly unsaved: number;
}

export class ReplayFile {
  readonly #path: string;
  readonly #window: ReplayWindow;
  readonly #log: Logger;
  #handle: FileHandle | undefined;
  #pending: number[] = [];
  #records = 0;
  #unsaved = 0;
  readonly #reportFailure: (err: Error) => void;
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();

  private constructor(path: string, window: ReplayWindow, log: Logger) {
    this.#path = path;
    this.#window = window;
    this.#log = log;
    this.#reportFailure = throttled(LOG_EVERY_MS, (err: Error) =>
      log.error('cannot save the replay cache; it keeps working in memory only', {
        path,
        error: err.message,
        unsaved: this.#unsaved,
      }),
    );
  }

  /** Loads the file into `window`, rewrites it compacted and starts appending to it. */
  static async open(dataDir: string, window: ReplayWindow, log: Logger): Promise<ReplayFile> {
    const file = new ReplayFile(join(dataDir, REPLAY_FILE), window, log);
    let loaded = 0;
    try {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      loaded = await file.#load();
      await file.#compact();
      file.#handle = await file.#openForAppend();
    } catch (err) {
      file.#failed(err as Error);
    }
    log.info('replay cache loaded', { entries: window.size, fromFile: loaded });
    file.#timer = setInterval(() => {
      file.#chain = file.#chain.then(() => file.#flush());
    }, FLUSH_MS).unref();
    return file;
  }

  async #load(): Promise<number> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.#path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.#failed(err as Error);
      return 0;
    }
    if (bytes.length < MAGIC.length || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
      this.#log.error('replay cache file is not ours; starting with an empty cache', { path: this.#path });
      return 0;
    }
    let n = 0;
    // A torn last record (crash mid-write) is ignored.
    for (let at = MAGIC.length; at + RECORD <= bytes.length; at += RECORD) {
      this.#window.restore(
        bytes.readUInt32LE(at),
        bytes.readUInt32LE(at + 4),
        bytes.readUInt32LE(at + 8) * 1000,
      );
      n++;
    }
    return n;
  }

  /** Writes the live entries to a new file and puts it in place, 0600 whatever was there before. */
  async #compact(): Promise<void> {
    const records: number[] = [];
    for (const [lo, hi, at] of this.#window.entries()) records.push(lo, hi, Math.ceil(at / 1000));
    const tmp = `${this.#path}.${process.pid}.tmp`;
    try {
      await writeFile(tmp, Buffer.concat([MAGIC, encode(records)]), { mode: 0o600 });
      await chmod(tmp, 0o600);
      await rename(tmp, this.#path);
    } catch (err) {
      // A half-written copy would only hold on to the space a full disk lacks.
      await unlink(tmp).catch(() => {});
      throw err;
    }
    this.#records = records.length / 3;
  }

  /** Queues a newly remembered entry for the disk. */
  append(lo: number, hi: number, atMs: number): void {
    if (this.#pending.length >= MAX_PENDING * 3) {
      this.#unsaved++;
      return;
    }
    this.#pending.push(lo, hi, Math.ceil(atMs / 1000));
  }

  get figures(): ReplayFileFigures {
    return { unsaved: this.#unsaved };
  }

  async #flush(): Promise<void> {
    try {
      if (this.#records > 2 * this.#window.size + COMPACT_SLACK) {
        await this.#handle?.close();
        this.#handle = undefined;
        // What is pending now is in the window, so the rewrite holds it; if the rewrite fails,
        // it is appended to the file as it is, like any other turn.
        const covered = this.#pending.length;
        try {
          await this.#compact();
          this.#pending.splice(0, covered);
        } catch (err) {
          this.#failed(err as Error);
        }
      }
      this.#handle ??= await this.#openForAppend();
      if (this.#pending.length === 0) return;
      const records = this.#pending;
      this.#pending = [];
      const bytes = encode(records);
      let written = 0;
      try {
        ({ bytesWritten: written } = await this.#handle.write(bytes));
      } finally {
        const whole = Math.floor(written / RECORD);
        this.#records += whole;
        this.#unsaved += records.length / 3 - whole;
      }
      if (written < bytes.length) {
        // A full disk takes part of a write. A record cut in two would shift every record appended
        // after it, and a restart would load those as garbage (some dated far in the future, never
        // expiring): the next flush opens the file again, cut back to whole records.
        const handle = this.#handle;
        this.#handle = undefined;
        await handle.close().catch(() => {});
        throw new Error(`short write: ${written} of ${bytes.length} bytes`);
      }
    } catch (err) {
      this.#failed(err as Error);
    }
  }

  /**
   * The file to append to. Normally compaction has just written it; if compaction failed, it is
   * whatever was there (a torn last record from a crash, or nothing): new records must start on a
   * record boundary after our magic, or a restart reads them shifted, as garbage.
   */
  async #openForAppend(): Promise<FileHandle> {
    const handle = await open(this.#path, 'a', 0o600);
    try {
      const { size } = await handle.stat();
      if (size < MAGIC.length) {
        await handle.truncate(0);
        const { bytesWritten } = await handle.write(MAGIC);
        if (bytesWritten < MAGIC.length) throw new Error('short write of the file header');
      } else {
        const torn = (size - MAGIC.length) % RECORD;
        if (torn > 0) await handle.truncate(size - torn);
      }
      return handle;
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
  }

  #failed(err: Error): void {
    this.#reportFailure(err);
  }

  /** Writes what is pending and closes the file. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#chain = this.#chain.then(() => this.#flush());
    await this.#chain;
    await this.#handle?.close().catch(() => {});
    this.#handle = undefined;
  }
}

function encode(records: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe((records.length / 3) * RECORD);
  for (let i = 0, at = 0; i < records.length; i += 3, at += RECORD) {
    out.writeUInt32LE(records[i]!, at);
    out.writeUInt32LE(records[i + 1]!, at + 4);
    out.writeUInt32LE(records[i + 2]!, at + 8);
  }
  return out;
}
