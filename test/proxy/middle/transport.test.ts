import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { CbcStream } from '../../../proxy/src/middle/codec/cbc-stream.js';
import { FullTransport } from '../../../proxy/src/middle/codec/constants.js';
import { crc32c } from '../../../proxy/src/middle/codec/crc32c.js';
import { FrameReader, FrameWriter } from '../../../proxy/src/middle/codec/full-transport.js';
import { ProtocolError } from '../../../proxy/src/protocol/errors.js';
import { loadVectors } from '../../support/vectors.js';

const key = { key: Buffer.alloc(32, 0x11), iv: Buffer.alloc(16, 0x22) };
const ping = Buffer.from('dfa230570807060504030201', 'hex');
const frames = loadVectors<{ frames: { frame: string; seq: number }[] }>('middle_proxy_frames.json').frames;

function errorOf(reader: FrameReader): ProtocolError {
  try {
    reader.next();
  } catch (error) {
    expect(error).to.be.instanceOf(ProtocolError);
    return error as ProtocolError;
  }
  return expect.fail('no error');
}

function readerWith(bytes: Buffer, firstSeq = 0): FrameReader {
  const reader = new FrameReader({ firstSeq });
  reader.push(bytes);
  return reader;
}

function lengthWord(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

describe('middle-end frame reader', () => {
  it('skips any number of padding words between frames', () => {
    const writer = new FrameWriter({ firstSeq: 0 });
    const padding = Buffer.from('04000000'.repeat(5), 'hex');
    const reader = readerWith(Buffer.concat([padding, writer.frame(ping), padding, writer.frame(ping)]));
    expect(reader.next()!.seq).to.equal(0);
    expect(reader.next()!.seq).to.equal(1);
    expect(reader.next()).to.equal(undefined);
    expect(reader.buffered).to.equal(0);
  });

  it('waits for the rest of a frame that arrived in pieces', () => {
    const frame = new FrameWriter({ firstSeq: 0 }).frame(ping);
    const reader = new FrameReader({ firstSeq: 0 });
    for (const byte of frame.subarray(0, -1)) {
      reader.push(Buffer.from([byte]));
      expect(reader.next()).to.equal(undefined);
    }
    reader.push(frame.subarray(-1));
    expect(reader.next()!.payload).to.deep.equal(ping);
  });

  it('refuses a frame numbered out of order', () => {
    const frame = new FrameWriter({ firstSeq: 1 }).frame(ping);
    expect(errorOf(readerWith(frame, 0)).code).to.equal('ERR_MP_FRAME_SEQ');
  });

  it('refuses a frame whose checksum does not match', () => {
    const frame = new FrameWriter({ firstSeq: 0 }).frame(ping);
    frame[10]! ^= 1;
    expect(errorOf(readerWith(frame)).code).to.equal('ERR_MP_FRAME_CRC');
  });

  it("refuses an empty frame (12 bytes), which mtprotoproxy's minimum would let through", () => {
    const empty = Buffer.concat([lengthWord(FullTransport.OVERHEAD), Buffer.alloc(8)]);
    expect(errorOf(readerWith(empty)).code).to.equal('ERR_MP_FRAME_LENGTH');
  });

  for (const [what, length] of [
    ['not a multiple of 4', 21],
    ['zero', 0],
    ['negative as int32', 0xfffffff0],
    ['above the limit', FullTransport.MAX_FRAME_LEN + 4],
  ] as const) {
    it(`refuses a length that is ${what} as soon as the length word is in`, () => {
      expect(errorOf(readerWith(lengthWord(length))).code).to.equal('ERR_MP_FRAME_LENGTH');
    });
  }

  it('honours a lower frame limit', () => {
    const reader = new FrameReader({ firstSeq: 0, maxFrameLength: 64 });
    reader.push(lengthWord(68));
    expect(errorOf(reader).code).to.equal('ERR_MP_FRAME_LENGTH');
  });

  it('keeps throwing after the first error', () => {
    const reader = readerWith(lengthWord(21));
    const first = errorOf(reader);
    reader.push(new FrameWriter({ firstSeq: 0 }).frame(ping));
    expect(errorOf(reader)).to.equal(first);
  });

  it('decrypts ciphertext that arrives split off block boundaries', () => {
    const writer = new FrameWriter({ firstSeq: 0 });
    writer.startEncryption(key);
    const wire = Buffer.concat([writer.frame(ping), writer.frame(randomBytes(100 * 4)), writer.frame(ping)]);
    const reader = new FrameReader({ firstSeq: 0 });
    reader.startDecryption(key);
    const got: number[] = [];
    for (let at = 0; at < wire.length; at += 7) {
      reader.push(wire.subarray(at, at + 7));
      for (let f = reader.next(); f; f = reader.next()) got.push(f.seq);
    }
    expect(got).to.deep.equal([0, 1, 2]);
  });
});

describe('middle-end frame writer', () => {
  it('keeps the encrypted stream a multiple of 16 bytes with 04 00 00 00 words', () => {
    const writer = new FrameWriter({ firstSeq: 0 });
    writer.startEncryption(key);
    const decrypt = CbcStream.decrypting(key);
    for (const words of [1, 2, 3, 4, 5]) {
      const out = writer.frame(Buffer.alloc(words * 4, 0xaa));
      expect(out.length % 16).to.equal(0);
      const clear = decrypt.update(out);
      const frameLength = 12 + words * 4;
      expect(clear.readUInt32LE(0)).to.equal(frameLength);
      expect(clear.subarray(frameLength).toString('hex')).to.equal(
        '04000000'.repeat((out.length - frameLength) / 4),
      );
    }
  });

  it('pads a batch of frames once, at the end', () => {
    const writer = new FrameWriter({ firstSeq: 0 });
    writer.startEncryption(key);
    const out = writer.frames([ping, [ping.subarray(0, 4), ping.subarray(4)]]);
    expect(out.length).to.equal(48);
    const reader = new FrameReader({ firstSeq: 0 });
    reader.startDecryption(key);
    reader.push(out);
    expect([reader.next()!.payload, reader.next()!.payload]).to.deep.equal([ping, ping]);
    expect(writer.nextSeq).to.equal(2);
  });

  it('writes a payload given in parts exactly like the joined payload', () => {
    const frame = frames[0]!;
    const joined = new FrameWriter({ firstSeq: frame.seq }).frame(ping);
    const parts = new FrameWriter({ firstSeq: frame.seq }).frame([ping.subarray(0, 4), ping.subarray(4)]);
    expect(parts).to.deep.equal(joined);
    expect(joined.toString('hex')).to.equal(frame.frame);
  });

  it('does not reuse the bytes it handed out for the next frame', () => {
    const writer = new FrameWriter({ firstSeq: 0 });
    writer.startEncryption(key);
    const first = writer.frame(ping);
    const copy = Buffer.from(first);
    writer.frame(Buffer.alloc(64, 0x55));
    expect(first).to.deep.equal(copy);
  });

  it('refuses payloads that are empty or not a multiple of 4 (a bug of ours, not the peer)', () => {
    const writer = new FrameWriter();
    expect(() => writer.frame(Buffer.alloc(0))).to.throw(RangeError);
    expect(() => writer.frame(Buffer.alloc(6))).to.throw(RangeError);
  });
});

describe('CRC32C and the CBC wrapper', () => {
  it('CRC32C of "123456789" is the standard check value e3069283', () => {
    expect(crc32c(Buffer.from('123456789')).toString(16)).to.equal('e3069283');
    expect(crc32c(Buffer.from('56789'), crc32c(Buffer.from('1234')))).to.equal(0xe3069283);
  });

  it('the CBC chain continues across calls and only takes whole blocks', () => {
    const data = randomBytes(64);
    const once = CbcStream.encrypting(key).update(data);
    const stream = CbcStream.encrypting(key);
    expect(
      Buffer.concat([stream.update(data.subarray(0, 16)), stream.update(data.subarray(16))]),
    ).to.deep.equal(once);
    expect(() => stream.update(Buffer.alloc(15))).to.throw(RangeError);
  });
});
