// Record sizes after the handshake, the way real TLS servers size them: small records while the
// TCP connection is young (one record fits one segment, so the browser can decrypt early), larger
// ones after, and small again after a pause. The numbers are those of the dynamic record sizing
// that nginx builds with Cloudflare's patch use by default (ssl_dyn_rec_size_lo 1369 bytes for the
// first 40 records, ssl_dyn_rec_size_hi 4229 for the next 40, then 16384; reset after 1 s idle).
// A proxy that always writes 16 KB records, or whatever the upstream read happened to be, is
// easy to tell from a web server by the record lengths alone.
//
// Sizes here are what the record's length field says on the wire. A TLS 1.3 server's record of n
// plaintext bytes is n + 17 long (the inner content type and the 16-byte AEAD tag), so a web
// server's full record is 16401, never 16384; we carry that many bytes of our stream in it.
import { frameRecords } from './records.js';

/** TLS 1.3 record overhead: inner content type (1) and AEAD tag (16). */
const TLS13_RECORD_OVERHEAD = 17;
/** The largest record a TLS 1.3 web server writes, as it appears on the wire. */
const FULL_RECORD = 16384 + TLS13_RECORD_OVERHEAD;

export interface RecordScheduleSettings {
  readonly small: number;
  readonly medium: number;
  /** The size once the connection is warm. */
  readonly large: number;
  /** Records of each step before the next size. */
  readonly recordsPerStep: number;
  readonly idleResetMs: number;
}

export const DYNAMIC_RECORDS: RecordScheduleSettings = {
  small: 1369 + TLS13_RECORD_OVERHEAD,
  medium: 4229 + TLS13_RECORD_OVERHEAD,
  large: FULL_RECORD,
  recordsPerStep: 40,
  idleResetMs: 1000,
};

/** Records of the site's page smaller than this are tickets and headers, not its body. */
const BODY_RECORD_MIN = 600;

/**
 * The schedule for a site whose answer to a page request was measured (site-prober.ts
 * measureResponse, record lengths as on the wire): its largest record becomes ours, and a site
 * that sent its body in large records from the first one (no dynamic sizing) gets no small start.
 * Without a measurement, DYNAMIC_RECORDS.
 */
export function scheduleForSite(records: readonly number[] | undefined): RecordScheduleSettings {
  const body = (records ?? []).filter((n) => n >= BODY_RECORD_MIN);
  if (body.length === 0) return DYNAMIC_RECORDS;
  const large = Math.min(FULL_RECORD, Math.max(DYNAMIC_RECORDS.small, ...body));
  const startsLarge = body[0]! >= 2 * DYNAMIC_RECORDS.small || body[0]! === large;
  if (startsLarge) return { ...DYNAMIC_RECORDS, small: large, medium: large, large };
  return {
    ...DYNAMIC_RECORDS,
    small: Math.min(DYNAMIC_RECORDS.small, large),
    medium: Math.min(DYNAMIC_RECORDS.medium, large),
    large,
  };
}

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
    return step === 0 ? this.#s.small : step === 1 ? this.#s.medium : this.#s.large;
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
