// Received chunks kept as they arrived until a whole frame is there: a frame that came in one
// chunk is handed out as a subarray, one spread over several chunks is copied once.

export class ByteQueue {
  private chunks: Buffer[] = [];
  private offset = 0; // consumed bytes of chunks[0]
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** LE32 at the front; the caller has checked that 4 bytes are there. */
  peekUInt32LE(): number {
    const first = this.chunks[0]!;
    if (first.length - this.offset >= 4) return first.readUInt32LE(this.offset);
    let value = 0;
    let chunk = 0;
    let at = this.offset;
    for (let i = 0; i < 4; i++) {
      while (at >= this.chunks[chunk]!.length) {
        chunk++;
        at = 0;
      }
      value += this.chunks[chunk]![at++]! * 2 ** (8 * i);
    }
    return value;
  }

  /** Remove and return the first n bytes (n <= length). */
  take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.consume(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const copied = chunk.copy(out, filled, this.offset, Math.min(chunk.length, this.offset + n - filled));
      filled += copied;
      this.consume(copied);
    }
    return out;
  }

  skip(n: number): void {
    while (n > 0) {
      const available = this.chunks[0]!.length - this.offset;
      const step = Math.min(available, n);
      this.consume(step);
      n -= step;
    }
  }

  private consume(n: number): void {
    this.offset += n;
    this.total -= n;
    if (this.offset === this.chunks[0]!.length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }
}
