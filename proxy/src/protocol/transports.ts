// The three MTProto transports a client may run inside obfuscated2 (docs/protocol.md §3): an
// incremental reader that splits a decrypted client stream into packets, and the writers for
// packets and quick acks going back. Pure code: bytes in, bytes out.
import { randomBytes } from 'node:crypto';
import { ProtocolError } from './errors.js';
import type { RandomSource, Transport } from './obfuscated2.js';

/** Largest packet a client may send (official `MAX_POST_SIZE`, §3.5). */
const MAX_PACKET_SIZE = 1_044_480;

export interface Packet {
  /** The MTProto packet. A subarray of the pushed chunk when the whole frame arrived in one. */
  readonly payload: Buffer;
  /** The client asked for a quick ack (abridged: 0x80 of the first byte, others: bit 31). */
  readonly quickAck: boolean;
}

const ABRIDGED_LONG = 0x7f;
const QUICK_ACK_BYTE = 0x80;
const QUICK_ACK_BIT = 0x80000000;
const LENGTH_MASK = 0x7fffffff;
// A body spread over several chunks is gathered into a buffer that grows with what has arrived,
// so a peer announcing a large packet and then stalling holds little memory.
const MIN_GATHER = 4096;

function headerLength(transport: Transport, firstByte: number): number {
  if (transport !== 'abridged') return 4;
  return (firstByte & ABRIDGED_LONG) === ABRIDGED_LONG ? 4 : 1;
}

/**
 * Splits one direction of a decrypted stream into packets. Push every chunk as it arrives, then
 * call `next()` until it returns undefined; drained that way, the reader holds at most one
 * incomplete packet. Bad framing throws ProtocolError (and keeps throwing: the stream has lost
 * its alignment and the connection must be closed).
 *
 * Empty packets are refused (ERR_TRANSPORT_EMPTY): MTProto never sends one from client to server,
 * and a padded frame shorter than 4 bytes cannot carry a packet either.
 */
export class PacketReader {
  readonly #transport: Transport;
  readonly #maxPacket: number;
  readonly #queue: Buffer[] = [];
  #pos = 0;
  #queued = 0;
  /** A frame header split across reads, only while it is (4 bytes at most). */
  #head: Buffer | undefined;
  #headLen = 0;
  #headNeed = 0;
  #framed = false;
  #keep = 0;
  #skip = 0;
  #quickAck = false;
  #body: Buffer | undefined;
  #filled = 0;
  #error: ProtocolError | undefined;

  constructor(transport: Transport, maxPacket = MAX_PACKET_SIZE) {
    this.#transport = transport;
    this.#maxPacket = maxPacket;
  }

  /** Bytes received and not yet handed out as packets (padding still to skip not included). */
  get buffered(): number {
    return this.#queued + this.#headLen + this.#filled;
  }

  push(chunk: Buffer): void {
    if (this.#error) throw this.#error;
    if (chunk.length === 0) return;
    this.#queue.push(chunk);
    this.#queued += chunk.length;
  }

  next(): Packet | undefined {
    if (this.#error) throw this.#error;
    try {
      return this.#next();
    } catch (err) {
      if (err instanceof ProtocolError) this.#error = err;
      throw err;
    }
  }

  #next(): Packet | undefined {
    for (;;) {
      const chunk = this.#queue[0];
      if (chunk === undefined) return undefined;
      if (this.#pos === chunk.length) {
        this.#queue.shift();
        this.#pos = 0;
        continue;
      }
      if (!this.#framed) {
        this.#readHeader(chunk);
        continue;
      }
      const packet = this.#readBody(chunk);
      if (packet) return packet;
    }
  }

  #consume(n: number): void {
    this.#pos += n;
    this.#queued -= n;
  }

  #readHeader(chunk: Buffer): void {
    const pos = this.#pos;
    if (this.#headLen === 0) {
      const need = headerLength(this.#transport, chunk[pos]!);
      if (chunk.length - pos >= need) {
        this.#consume(need);
        this.#decodeHeader(chunk, pos);
        return;
      }
      this.#headNeed = need;
    }
    const take = Math.min(this.#headNeed - this.#headLen, chunk.length - pos);
    this.#head ??= Buffer.allocUnsafe(4);
    chunk.copy(this.#head, this.#headLen, pos, pos + take);
    this.#headLen += take;
    this.#consume(take);
    if (this.#headLen === this.#headNeed) {
      const head = this.#head;
      this.#headLen = 0;
      this.#head = undefined;
      this.#decodeHeader(head, 0);
    }
  }

  /** Validates a complete frame header and records the body layout (§3.1-§3.3). */
  #decodeHeader(bytes: Buffer, at: number): void {
    let length: number;
    let padding = 0;
    if (this.#transport === 'abridged') {
      const first = bytes[at]!;
      this.#quickAck = (first & QUICK_ACK_BYTE) !== 0;
      let words = first & ABRIDGED_LONG;
      if (words === ABRIDGED_LONG) {
        words = bytes.readUIntLE(at + 1, 3);
        if (words < ABRIDGED_LONG) {
          throw new ProtocolError(
            'ERR_TRANSPORT_OVERLONG',
            `abridged long form used for ${words} words, which fit the short form`,
          );
        }
      }
      length = words * 4;
    } else {
      const word = bytes.readUInt32LE(at);
      this.#quickAck = (word & QUICK_ACK_BIT) !== 0;
      const total = word & LENGTH_MASK;
      if (this.#transport === 'padded') {
        padding = total & 3;
        length = total - padding;
      } else {
        length = total;
        if (length % 4 !== 0) {
          throw new ProtocolError(
            'ERR_TRANSPORT_UNALIGNED',
            `packet length ${length} is not a multiple of 4`,
          );
        }
      }
    }
    if (length > this.#maxPacket) {
      throw new ProtocolError(
        'ERR_TRANSPORT_TOO_LARGE',
        `packet of ${length} bytes exceeds the limit of ${this.#maxPacket}`,
      );
    }
    if (length === 0) throw new ProtocolError('ERR_TRANSPORT_EMPTY', 'empty packet');
    this.#keep = length;
    this.#skip = padding;
    this.#framed = true;
  }

  #readBody(chunk: Buffer): Packet | undefined {
    const pos = this.#pos;
    const available = chunk.length - pos;
    if (this.#body === undefined && this.#filled === 0) {
      if (available >= this.#keep + this.#skip) {
        this.#consume(this.#keep + this.#skip);
        return this.#finish(chunk.subarray(pos, pos + this.#keep));
      }
    }
    if (this.#filled < this.#keep) {
      const take = Math.min(this.#keep - this.#filled, available);
      this.#reserve(this.#filled + take);
      chunk.copy(this.#body!, this.#filled, pos, pos + take);
      this.#filled += take;
      this.#consume(take);
    } else {
      const skip = Math.min(this.#skip, available);
      this.#skip -= skip;
      this.#consume(skip);
    }
    if (this.#filled < this.#keep || this.#skip > 0) return undefined;
    const payload = this.#body!.length === this.#keep ? this.#body! : this.#body!.subarray(0, this.#keep);
    this.#body = undefined;
    this.#filled = 0;
    return this.#finish(payload);
  }

  /** Grows the gather buffer geometrically, never beyond the announced packet size. */
  #reserve(size: number): void {
    const body = this.#body;
    if (body !== undefined && body.length >= size) return;
    const capacity = Math.min(this.#keep, Math.max(size, MIN_GATHER, (body?.length ?? 0) * 2));
    const grown = Buffer.allocUnsafe(capacity);
    body?.copy(grown, 0, 0, this.#filled);
    this.#body = grown;
  }

  #finish(payload: Buffer): Packet {
    this.#framed = false;
    return { payload, quickAck: this.#quickAck };
  }
}

/**
 * Frames one packet for `transport`. Returns the pieces to write in order (header, payload and,
 * for padded, 0..3 padding bytes) so the payload is never copied here. The padded writer draws 4
 * bytes from `random`: the low two bits of the first give the padding length, the next bytes are
 * the padding. `quickAck` sets the client's quick-ack request bit (for stand-in clients).
 */
export function encodePacket(
  transport: Transport,
  payload: Buffer,
  random: RandomSource = randomBytes,
  quickAck = false,
): Buffer[] {
  const length = payload.length;
  if (length % 4 !== 0) {
    throw new ProtocolError('ERR_TRANSPORT_UNALIGNED', `packet length ${length} is not a multiple of 4`);
  }
  if (transport === 'abridged') {
    const words = length / 4;
    if (words > 0xffffff) {
      throw new ProtocolError(
        'ERR_TRANSPORT_TOO_LARGE',
        `packet of ${length} bytes is too large for abridged`,
      );
    }
    const flag = quickAck ? QUICK_ACK_BYTE : 0;
    if (words < ABRIDGED_LONG) return [Buffer.from([words | flag]), payload];
    const header = Buffer.allocUnsafe(4);
    header[0] = ABRIDGED_LONG | flag;
    header.writeUIntLE(words, 1, 3);
    return [header, payload];
  }
  const padding = transport === 'padded' ? random(4) : undefined;
  const padLength = padding ? padding[0]! & 3 : 0;
  const total = length + padLength;
  if (total > LENGTH_MASK) {
    throw new ProtocolError('ERR_TRANSPORT_TOO_LARGE', `packet of ${length} bytes is too large`);
  }
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32LE((quickAck ? total | QUICK_ACK_BIT : total) >>> 0);
  if (padLength === 0) return [header, payload];
  return [header, payload, padding!.subarray(1, 1 + padLength)];
}

/**
 * A quick-ack token (the 4 bytes of RPC_SIMPLE_ACK) as the client expects it (§3.4): abridged
 * gets the bytes reversed, intermediate the bytes as they are. For padded we send the raw form
 * too (what mtprotoproxy always does and the official proxy does half of the time), which
 * clients accept because the set bit 31 cannot start a valid length.
 */
export function encodeQuickAck(transport: Transport, token: Buffer): Buffer {
  if (token.length !== 4) {
    throw new ProtocolError('ERR_QUICK_ACK_TOKEN', `quick-ack token must be 4 bytes, got ${token.length}`);
  }
  return transport === 'abridged' ? Buffer.from(token).reverse() : token;
}
