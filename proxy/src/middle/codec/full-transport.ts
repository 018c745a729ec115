// The "full" transport of the middle-end connection (§6.3):
//   frame = LE32 total_len || LE32 seq (signed) || payload || LE32 crc,  total_len = 12 + payload
// CRC32 (zlib) over everything before the crc, CRC32C once both handshakes asked for it.
// Sequence numbers count frames per direction from -2. Once AES-CBC is on (§6.7) the stream is
// kept a multiple of 16 bytes with padding words `04 00 00 00`, which readers skip.
// The same classes serve both ends: the proxy writes with the CLIENT key, a middle-end (or the
// test stand-in) with the SERVER key.
import { crc32 } from 'node:zlib';
import { ProtocolError } from '../../protocol/errors.js';
import { ByteQueue } from './byte-queue.js';
import { type CbcKey, CbcStream } from './cbc-stream.js';
import { FullTransport } from './constants.js';
import { crc32c } from './crc32c.js';

export type Checksum = (data: Uint8Array, previous?: number) => number;

/** A payload given as one buffer or as parts written back to back (e.g. RPC header + client packet). */
export type FramePayload = Buffer | readonly Buffer[];

export interface Frame {
  readonly seq: number;
  /** A subarray of received (or decrypted) bytes; no copy was made for it. */
  readonly payload: Buffer;
}

const { OVERHEAD, PADDING_WORD, CBC_BLOCK, MIN_FRAME_LEN, MAX_FRAME_LEN, FIRST_SEQ } = FullTransport;
// Encrypted frames are assembled in a buffer kept for the connection (a batch of one turn of the
// event loop fits); bigger ones get their own.
const SCRATCH_LIMIT = 320 * 1024;

export function payloadLength(payload: FramePayload): number {
  if (Buffer.isBuffer(payload)) return payload.length;
  let n = 0;
  for (const part of payload as readonly Buffer[]) n += part.length;
  return n;
}

/** Throws RangeError unless a payload of this length can be framed (checked before queueing it). */
export function checkPayloadLength(length: number): void {
  if (length < 4 || length % 4 !== 0 || length + OVERHEAD > MAX_FRAME_LEN) {
    throw new RangeError(`frame payload must be a non-empty multiple of 4 bytes, got ${length}`);
  }
}

export interface FrameWriterOptions {
  /** Sequence number of the first frame written; -2 on a fresh connection. */
  readonly firstSeq?: number;
  /** Pad frames written before encryption as well, as mtprotoproxy does; the official proxy does not. */
  readonly padClearText?: boolean;
}

/** One direction's frame encoder: numbering, checksum, padding and the CBC chain. */
export class FrameWriter {
  private seq: number;
  private readonly padClearText: boolean;
  private checksum: Checksum = crc32;
  private cbc: CbcStream | undefined;
  private scratch = Buffer.alloc(0);

  constructor(options: FrameWriterOptions = {}) {
    this.seq = options.firstSeq ?? FIRST_SEQ;
    this.padClearText = options.padClearText ?? false;
  }

  get nextSeq(): number {
    return this.seq;
  }

  get encrypting(): boolean {
    return this.cbc !== undefined;
  }

  /** Everything written from now on is encrypted, continuing one CBC chain. */
  startEncryption(key: CbcKey): void {
    if (this.cbc) throw new Error('encryption already started');
    this.cbc = CbcStream.encrypting(key);
  }

  useCrc32c(): void {
    this.checksum = crc32c;
  }

  /** Bytes to send for one frame (padded and encrypted once encryption is on). */
  frame(payload: FramePayload): Buffer {
    return this.frames([payload]);
  }

  /** Several frames in one write, padded once at the end as the official proxy's flush does. */
  frames(payloads: readonly FramePayload[]): Buffer {
    let size = 0;
    for (const payload of payloads) {
      const length = payloadLength(payload);
      checkPayloadLength(length);
      size += OVERHEAD + length;
    }
    const padded = this.cbc !== undefined || this.padClearText;
    const total = padded ? size + (-size & (CBC_BLOCK - 1)) : size;
    const out = this.cbc && total <= SCRATCH_LIMIT ? this.scratchOf(total) : Buffer.allocUnsafe(total);
    let at = 0;
    for (const payload of payloads) at = this.writeFrame(out, at, payload);
    for (; at < total; at += 4) out.writeUInt32LE(PADDING_WORD, at);
    return this.cbc ? this.cbc.update(out.subarray(0, total)) : out;
  }

  private writeFrame(out: Buffer, start: number, payload: FramePayload): number {
    const length = payloadLength(payload);
    out.writeUInt32LE(OVERHEAD + length, start);
    out.writeInt32LE(this.seq, start + 4);
    let at = start + 8;
    if (Buffer.isBuffer(payload)) at += payload.copy(out, at);
    else for (const part of payload as readonly Buffer[]) at += part.copy(out, at);
    out.writeUInt32LE(this.checksum(out.subarray(start, at)), at);
    this.seq = (this.seq + 1) | 0;
    return at + 4;
  }

  private scratchOf(size: number): Buffer {
    if (this.scratch.length < size)
      this.scratch = Buffer.allocUnsafe(Math.max(size, 2 * this.scratch.length));
    return this.scratch;
  }
}

export interface FrameReaderOptions {
  /** Sequence number expected on the first frame; -2 on a fresh connection. */
  readonly firstSeq?: number;
  /** Largest total_len accepted (default and upper bound: 16 MiB). */
  readonly maxFrameLength?: number;
}

/**
 * One direction's frame decoder. Push every chunk as it arrives, then call `next()` until it
 * returns undefined. Padding words are skipped wherever they appear between frames. A bad length,
 * checksum or sequence number throws ProtocolError, and keeps throwing: the connection is lost.
 *
 * After the RPC_NONCE frame, call `startDecryption` before asking for the next frame: whatever
 * follows it is ciphertext.
 */
export class FrameReader {
  private readonly queue = new ByteQueue();
  private readonly maxFrameLength: number;
  private seq: number;
  private checksum: Checksum = crc32;
  private cbc: CbcStream | undefined;
  private readonly carry = Buffer.alloc(CBC_BLOCK);
  private carryLength = 0;
  private failure: ProtocolError | undefined;

  constructor(options: FrameReaderOptions = {}) {
    this.seq = options.firstSeq ?? FIRST_SEQ;
    this.maxFrameLength = Math.min(options.maxFrameLength ?? MAX_FRAME_LEN, MAX_FRAME_LEN);
  }

  /** Bytes received and not yet handed out as frames. */
  get buffered(): number {
    return this.queue.length + this.carryLength;
  }

  get decrypting(): boolean {
    return this.cbc !== undefined;
  }

  push(chunk: Buffer): void {
    if (this.cbc) this.decrypt(chunk, this.cbc);
    else this.queue.push(chunk);
  }

  /**
   * Everything not yet read is ciphertext from here on. Padding words still in clear (which
   * mtprotoproxy puts after its RPC_NONCE) are dropped first.
   */
  startDecryption(key: CbcKey): void {
    if (this.cbc) throw new Error('decryption already started');
    while (this.queue.length >= 4 && this.queue.peekUInt32LE() === PADDING_WORD) this.queue.skip(4);
    this.cbc = CbcStream.decrypting(key);
    if (this.queue.length > 0) this.decrypt(this.queue.take(this.queue.length), this.cbc);
  }

  useCrc32c(): void {
    this.checksum = crc32c;
  }

  next(): Frame | undefined {
    if (this.failure) throw this.failure;
    try {
      return this.readFrame();
    } catch (error) {
      if (error instanceof ProtocolError) this.failure = error;
      throw error;
    }
  }

  private readFrame(): Frame | undefined {
    const queue = this.queue;
    while (queue.length >= 4) {
      const length = queue.peekUInt32LE();
      if (length === PADDING_WORD) {
        queue.skip(4);
        continue;
      }
      if (length < MIN_FRAME_LEN || length % 4 !== 0 || length > this.maxFrameLength) {
        throw new ProtocolError('ERR_MP_FRAME_LENGTH', `middle-end frame length ${length} is invalid`);
      }
      if (queue.length < length) return undefined;
      const frame = queue.take(length);
      const crcAt = length - 4;
      if (this.checksum(frame.subarray(0, crcAt)) !== frame.readUInt32LE(crcAt)) {
        throw new ProtocolError('ERR_MP_FRAME_CRC', `middle-end frame ${this.seq} has a bad checksum`);
      }
      const seq = frame.readInt32LE(4);
      if (seq !== this.seq) {
        throw new ProtocolError('ERR_MP_FRAME_SEQ', `middle-end frame number ${seq}, expected ${this.seq}`);
      }
      this.seq = (this.seq + 1) | 0;
      return { seq, payload: frame.subarray(8, crcAt) };
    }
    return undefined;
  }

  /** Feed whole blocks to the cipher; an incomplete block waits in `carry` for the next chunk. */
  private decrypt(chunk: Buffer, cbc: CbcStream): void {
    let at = 0;
    if (this.carryLength > 0) {
      at = chunk.copy(this.carry, this.carryLength, 0, CBC_BLOCK - this.carryLength);
      this.carryLength += at;
      if (this.carryLength < CBC_BLOCK) return;
      this.queue.push(cbc.update(this.carry));
      this.carryLength = 0;
    }
    const end = at + ((chunk.length - at) & ~(CBC_BLOCK - 1));
    if (end > at) this.queue.push(cbc.update(chunk.subarray(at, end)));
    this.carryLength = chunk.copy(this.carry, 0, end);
  }
}
