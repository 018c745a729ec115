// Record sizes after the handshake, the way real TLS servers size them: small records while the
// TCP connection is young (one record fits one segment, so the browser can decrypt early), larger
// ones after, and small again after a pause. The numbers are those of the dynamic record sizing
// that nginx builds with Cloudflare's patch use by default (ssl_dyn_rec_size_lo 1369 bytes for the
// first 40 records, ssl_dyn_rec_size_hi 4229 for the next 40, then 16384; reset after 1 s idle).
// A proxy that always writes 16 KB records, or whatever the upstream read happened to be, is
// easy to tell from a web server by the record lengths alone.
import { frameRecords, MAX_RECORD_PAYLOAD } from '../protocol/tls-records.js';

export interface RecordScheduleSettings {
  readonly small: number;
  readonly medium: number;
  /** Records of each step before the next size. */
  readonly recordsPerStep: number;
  readonly idleResetMs: number;
}

export const DYNAMIC_RECORDS: RecordScheduleSettings = {
  small: 1369,
  medium: 4229,
  recordsPerStep: 40,
  idleResetMs: 1000,
};

/** One connection's schedule: wrap() turns proxy bytes into records of the sizes due now. */
export class RecordSchedule {
  readonly #s: RecordScheduleSettings;
  readonly #now: () => number;
  #records = 0;
  #lastAt = Number.NEGATIVE_INFINITY;

  constructor(
    settings: RecordScheduleSettings = DYNAMIC_RECORDS,
    now: () => number = () => performance.now(),
  ) {
    this.#s = settings;
    this.#now = now;
  }

  /** The payload limit of the next record. */
  #limit(): number {
    const step = Math.floor(this.#records / this.#s.recordsPerStep);
    return step === 0 ? this.#s.small : step === 1 ? this.#s.medium : MAX_RECORD_PAYLOAD;
  }

  wrap(data: Buffer): Buffer {
    if (data.length === 0) return data;
    const now = this.#now();
    if (now - this.#lastAt > this.#s.idleResetMs) this.#records = 0;
    this.#lastAt = now;
    // Sizes first, so headers and data go out in one buffer (one allocation, one write).
    const sizes: number[] = [];
    for (let left = data.length; left > 0; ) {
      const n = Math.min(left, this.#limit());
      sizes.push(n);
      left -= n;
      this.#records++;
    }
    return frameRecords(data, sizes.length, (i) => sizes[i]!);
  }
}
