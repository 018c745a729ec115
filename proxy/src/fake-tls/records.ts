// The TLS record layer of fake TLS once the handshake is over (docs/protocol.md §4.8): the client's
// ChangeCipherSpec, then `17 03 03 || BE16 len || data` records in both directions. The records are
// only framing (nothing is really encrypted or authenticated by TLS), so payload bytes are handed
// on as soon as they arrive instead of waiting for a whole record.
import { ProtocolError } from '../protocol/errors.js';

export const RECORD_HEADER_LEN = 5;
export const RECORD_CHANGE_CIPHER_SPEC = 0x14;
export const RECORD_HANDSHAKE = 0x16;
export const RECORD_APPLICATION_DATA = 0x17;
/** The largest record payload we write (TLS plaintext limit). */
export const MAX_RECORD_PAYLOAD = 16384;
/** The largest record payload we accept: the TLS 1.3 ciphertext limit, 2^14 + 256. */
const MAX_INCOMING_RECORD_PAYLOAD = 16640;
/** `14 03 03 00 01 01`: the one ChangeCipherSpec record both sides send. */
export const CHANGE_CIPHER_SPEC = Buffer.from([0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);

const EMPTY = Buffer.alloc(0);

/**
 * Unwraps the client's record stream into one byte stream (the obfuscated2 bytes). Accepts one
 * ChangeCipherSpec before the first application-data record and application-data records of at
 * most 16640 bytes after it; anything else is a ProtocolError. It holds at most a partial 5-byte
 * header between calls, so its buffering is bounded whatever the peer sends.
 */
export class TlsRecordReader {
  private readonly header = Buffer.alloc(RECORD_HEADER_LEN);
  private headerFill = 0;
  /** Payload bytes of the current record still to come. */
  private remaining = 0;
  /** The current record is the ChangeCipherSpec (its payload is checked, not delivered). */
  private inCcs = false;
  private seenData = false;
  private seenCcs = false;
  private readonly pieces: Buffer[] = [];

  /**
   * Feed the next chunk from the socket; returns the application-data payload it completes, as a
   * subarray of `chunk` when that payload is contiguous in it (the usual case), else a copy.
   * Returns an empty buffer when the chunk holds only headers.
   */
  push(chunk: Buffer): Buffer {
    const pieces = this.pieces;
    pieces.length = 0;
    let pos = 0;
    while (pos < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - pos);
        if (this.inCcs) {
          if (chunk[pos] !== 0x01)
            throw new ProtocolError('ERR_TLS_CCS', 'ChangeCipherSpec payload is not 01');
        } else {
          pieces.push(chunk.subarray(pos, pos + take));
        }
        this.remaining -= take;
        pos += take;
        continue;
      }
      const take = Math.min(RECORD_HEADER_LEN - this.headerFill, chunk.length - pos);
      chunk.copy(this.header, this.headerFill, pos, pos + take);
      this.headerFill += take;
      pos += take;
      if (this.headerFill === RECORD_HEADER_LEN) {
        this.headerFill = 0;
        this.startRecord();
      }
    }
    if (pieces.length === 0) return EMPTY;
    if (pieces.length === 1) return pieces[0]!;
    return Buffer.concat(pieces);
  }

  /** True when no record is half read: the stream may end here without losing bytes. */
  get atRecordBoundary(): boolean {
    return this.headerFill === 0 && this.remaining === 0;
  }

  private startRecord(): void {
    const h = this.header;
    if (h[1] !== 0x03 || h[2] !== 0x03) {
      throw new ProtocolError(
        'ERR_TLS_RECORD_VERSION',
        `unexpected record version ${h.toString('hex', 1, 3)}`,
      );
    }
    const length = h.readUInt16BE(3);
    if (h[0] === RECORD_APPLICATION_DATA) {
      if (length > MAX_INCOMING_RECORD_PAYLOAD) {
        throw new ProtocolError('ERR_TLS_RECORD_TOO_LONG', `application-data record of ${length} bytes`);
      }
      this.seenData = true;
      this.inCcs = false;
      this.remaining = length;
      return;
    }
    if (h[0] === RECORD_CHANGE_CIPHER_SPEC && !this.seenData && !this.seenCcs) {
      if (length !== 1) throw new ProtocolError('ERR_TLS_CCS', `ChangeCipherSpec of ${length} bytes`);
      this.seenCcs = true;
      this.inCcs = true;
      this.remaining = 1;
      return;
    }
    throw new ProtocolError('ERR_TLS_RECORD_TYPE', `unexpected record type 0x${h.toString('hex', 0, 1)}`);
  }
}

/**
 * Wraps bytes into application-data records of at most `maxPayload` bytes, headers and data in one
 * buffer so that a packet costs one allocation and one socket write. Empty data gives no record.
 */
export function wrapRecords(data: Buffer, maxPayload: number = MAX_RECORD_PAYLOAD): Buffer {
  if (!(maxPayload >= 1 && maxPayload <= MAX_RECORD_PAYLOAD)) {
    throw new RangeError(`record payload limit must be 1..${MAX_RECORD_PAYLOAD}, got ${maxPayload}`);
  }
  const records = Math.ceil(data.length / maxPayload);
  return frameRecords(data, records, (i) => Math.min(maxPayload, data.length - i * maxPayload));
}

/**
 * `count` application-data records carrying `data` in order, record i holding `size(i)` bytes
 * (the sizes must add up to data.length), in one buffer.
 */
export function frameRecords(data: Buffer, count: number, size: (i: number) => number): Buffer {
  const out = Buffer.allocUnsafe(data.length + count * RECORD_HEADER_LEN);
  let at = 0;
  let from = 0;
  for (let i = 0; i < count; i++) {
    const n = size(i);
    out[at] = RECORD_APPLICATION_DATA;
    out[at + 1] = 0x03;
    out[at + 2] = 0x03;
    out.writeUInt16BE(n, at + 3);
    data.copy(out, at + RECORD_HEADER_LEN, from, from + n);
    at += RECORD_HEADER_LEN + n;
    from += n;
  }
  return out;
}
