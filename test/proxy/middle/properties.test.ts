import { expect } from 'chai';
import fc from 'fast-check';
import { type Frame, FrameReader, FrameWriter } from '../../../proxy/src/middle/codec/full-transport.js';
import { parseProxyConfig } from '../../../proxy/src/middle/codec/proxy-config.js';
import { parseHandshake } from '../../../proxy/src/middle/codec/rpc-handshake.js';
import { parseMiddleEndMessage } from '../../../proxy/src/middle/codec/rpc-messages.js';
import { parseNonce } from '../../../proxy/src/middle/codec/rpc-nonce.js';
import { ProtocolError } from '../../../proxy/src/protocol/errors.js';
import { encodeProxyReq, parseProxyMessage, parseProxyReq } from '../../support/middle-end-codec.js';

const payload = fc
  .integer({ min: 1, max: 80 })
  .chain((words) => fc.uint8Array({ minLength: words * 4, maxLength: words * 4 }))
  .map((a) => Buffer.from(a));
const key = fc.record({
  key: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((a) => Buffer.from(a)),
  iv: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)),
});

/** Cut `bytes` at the given points (taken modulo its length). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.subarray(from, p));
    from = p;
  }
  return chunks;
}

/** Drain a reader; every outcome other than frames, "need more" or ProtocolError fails the property. */
function drain(reader: FrameReader, bound: number): { frames: Frame[]; error?: ProtocolError } {
  const frames: Frame[] = [];
  for (let i = 0; i < bound; i++) {
    try {
      const frame = reader.next();
      if (!frame) return { frames };
      frames.push(frame);
    } catch (error) {
      if (error instanceof ProtocolError) return { frames, error };
      throw error;
    }
  }
  throw new Error('reader did not settle');
}

function parsesOrRefuses(parse: () => unknown): void {
  try {
    parse();
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
  }
}

describe('middle-end framing properties', () => {
  it('frames written in any grouping come back in order across any chunk split', () => {
    fc.assert(
      fc.property(
        fc.array(payload, { minLength: 1, maxLength: 8 }),
        fc.option(key, { nil: undefined }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.integer({ min: 1, max: 3 }),
        (payloads, cbcKey, useCrc32c, cuts, batch) => {
          const writer = new FrameWriter({ firstSeq: 0 });
          const reader = new FrameReader({ firstSeq: 0 });
          if (cbcKey) {
            writer.startEncryption(cbcKey);
            reader.startDecryption(cbcKey);
          }
          if (useCrc32c) {
            writer.useCrc32c();
            reader.useCrc32c();
          }
          const writes: Buffer[] = [];
          for (let i = 0; i < payloads.length; i += batch)
            writes.push(writer.frames(payloads.slice(i, i + batch)));
          const got: Frame[] = [];
          for (const chunk of split(Buffer.concat(writes), cuts)) {
            reader.push(chunk);
            const { frames, error } = drain(reader, payloads.length + 1);
            expect(error).to.equal(undefined);
            got.push(...frames);
          }
          expect(got.map((f) => f.seq)).to.deep.equal(payloads.map((_, i) => i));
          expect(got.map((f) => f.payload)).to.deep.equal(payloads);
          expect(reader.buffered).to.equal(0);
        },
      ),
    );
  });

  it('arbitrary bytes give frames or a ProtocolError, in clear and encrypted', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.option(key, { nil: undefined }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (bytes, cbcKey, cuts) => {
          const reader = new FrameReader({ firstSeq: 0, maxFrameLength: 1024 });
          if (cbcKey) reader.startDecryption(cbcKey);
          for (const chunk of split(Buffer.from(bytes), cuts)) {
            reader.push(chunk);
            if (drain(reader, bytes.length + 1).error) return;
          }
        },
      ),
    );
  });

  it('a frame with any single byte changed is refused or held back, never delivered altered', () => {
    fc.assert(
      fc.property(payload, fc.nat(), fc.integer({ min: 1, max: 255 }), (body, at, flip) => {
        const wire = new FrameWriter({ firstSeq: 0 }).frame(body);
        wire[at % wire.length]! ^= flip;
        const reader = new FrameReader({ firstSeq: 0 });
        reader.push(wire);
        const { frames } = drain(reader, 4);
        expect(frames).to.deep.equal([]);
      }),
    );
  });
});

describe('middle-proxy parser properties', () => {
  it('payload parsers take any bytes and either parse or throw ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const b = Buffer.from(bytes);
        for (const parse of [
          parseNonce,
          parseHandshake,
          parseMiddleEndMessage,
          parseProxyMessage,
          parseProxyReq,
        ]) {
          parsesOrRefuses(() => parse(b));
        }
      }),
    );
  });

  it('RPC_PROXY_REQ reads back what was written', () => {
    const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
    const endpoint = fc.record({ ip: ipv4, port: fc.integer({ min: 1, max: 65535 }) });
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        fc.constantFrom('abridged' as const, 'intermediate' as const, 'padded' as const),
        endpoint,
        endpoint,
        fc.option(fc.uint8Array({ minLength: 16, maxLength: 16 }), { nil: undefined }),
        payload,
        fc.boolean(),
        (connId, transport, client, proxy, tag, packet, quickAck) => {
          const adTag = tag && Buffer.from(tag);
          const r = parseProxyReq(
            encodeProxyReq({ connId, transport, client, proxy, adTag }, packet, quickAck),
          );
          expect(r).to.deep.include({ connId, client, proxy, adTag, packet });
          expect(r.flags >>> 31).to.equal(quickAck ? 1 : 0);
        },
      ),
    );
  });

  it('the config parser takes any text and returns a config or throws ProtocolError', () => {
    const token = fc.constantFrom(
      'proxy_for',
      'proxy',
      'default',
      'timeout',
      'min_connections',
      'max_connections',
      ' ',
      '\n',
      ';',
      ':',
      '#',
      '-1',
      '2',
      '8888',
      '149.154.175.50',
      '[2001:db8::1]',
      '[',
      ']',
      'example.org',
      '99999',
    );
    const grammarish = fc.array(token, { maxLength: 30 }).map((t) => t.join(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), grammarish), (text) => {
        parsesOrRefuses(() => parseProxyConfig(text));
      }),
      { numRuns: 500 },
    );
  });
});
