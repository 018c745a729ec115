import { expect } from 'chai';
import fc from 'fast-check';
import { ProtocolError } from '../../../proxy/src/protocol/errors.js';
import type { Transport } from '../../../proxy/src/protocol/obfuscated2.js';
import {
  encodePacket,
  encodeQuickAck,
  type Packet,
  PacketReader,
} from '../../../proxy/src/protocol/transports.js';
import { hex, loadVectors } from '../../support/vectors.js';

interface FramingRow {
  transport: string;
  name: string;
  direction?: 'client_to_proxy' | 'proxy_to_client';
  payload?: string;
  padding?: string;
  wire: string;
  quickack_requested?: boolean;
  delivered_payload?: string;
  rpc_simple_ack_confirm?: string;
}

const rows = loadVectors<{ vectors: FramingRow[] }>('transport_framing.json').vectors;
const transportOf = (name: string): Transport =>
  name === 'padded_intermediate' ? 'padded' : (name as Transport);
const TRANSPORTS: readonly Transport[] = ['abridged', 'intermediate', 'padded'];

/** Random source for the padded writer that yields exactly `padding` (0..3 bytes). */
function paddingDraw(padding: Buffer): (n: number) => Buffer {
  return (n) => {
    const draw = Buffer.alloc(n);
    draw[0] = padding.length;
    padding.copy(draw, 1);
    return draw;
  };
}

function readAll(reader: PacketReader, chunks: readonly Buffer[]): Packet[] {
  const packets: Packet[] = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    for (let p = reader.next(); p; p = reader.next()) packets.push(p);
  }
  return packets;
}

function wire(pieces: Buffer[]): string {
  return Buffer.concat(pieces).toString('hex');
}

describe('client transports (vectors, §3)', () => {
  for (const row of rows.filter((r) => r.payload !== undefined && r.direction === undefined)) {
    const transport = transportOf(row.transport);
    it(`${row.transport} ${row.name}: a client's frame is read back as its packet`, () => {
      const [packet, ...rest] = readAll(new PacketReader(transport), [hex(row.wire)]);
      expect(rest).to.have.length(0);
      expect(packet!.payload.toString('hex')).to.equal(row.payload);
      expect(packet!.quickAck).to.equal(row.quickack_requested);
    });

    it(`${row.transport} ${row.name}: the writer produces the same frame`, () => {
      const pieces = encodePacket(transport, hex(row.payload!), undefined, row.quickack_requested);
      expect(wire(pieces)).to.equal(row.wire);
    });
  }

  for (const row of rows.filter((r) => r.direction === 'client_to_proxy')) {
    it(`padded ${row.name}: the proxy keeps total & ~3 bytes`, () => {
      const [packet, ...rest] = readAll(new PacketReader('padded'), [hex(row.wire)]);
      expect(rest).to.have.length(0);
      expect(packet!.payload.toString('hex')).to.equal(row.delivered_payload);
      expect(packet!.quickAck).to.equal(false);
    });

    const padding = hex(row.padding!);
    if (padding.length <= 3) {
      it(`padded ${row.name}: the writer produces the same frame given the same padding`, () => {
        expect(wire(encodePacket('padded', hex(row.payload!), paddingDraw(padding)))).to.equal(row.wire);
      });
    }
  }

  for (const row of rows.filter((r) => r.direction === 'proxy_to_client')) {
    it(`padded ${row.name}: the writer reproduces the reference's frame given its padding`, () => {
      const payload = hex(row.payload!);
      const padding = hex(row.wire).subarray(4 + payload.length);
      expect(padding.length).to.be.within(0, 3);
      expect(wire(encodePacket('padded', payload, paddingDraw(padding)))).to.equal(row.wire);
      const [packet] = readAll(new PacketReader('padded'), [hex(row.wire)]);
      expect(packet!.payload.toString('hex')).to.equal(row.payload);
    });
  }

  for (const row of rows.filter((r) => r.rpc_simple_ack_confirm !== undefined)) {
    it(`${row.transport} ${row.name}: a quick ack reaches the client as ${row.wire}`, () => {
      const token = hex(row.rpc_simple_ack_confirm!);
      expect(encodeQuickAck(transportOf(row.transport), token).toString('hex')).to.equal(row.wire);
      expect(token.toString('hex'), 'token left untouched').to.equal(row.rpc_simple_ack_confirm);
    });
  }
});

describe('packet reader', () => {
  const payload = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

  it('hands out a packet that arrived in one chunk without copying it', () => {
    for (const transport of TRANSPORTS) {
      const chunk = Buffer.concat(encodePacket(transport, payload, paddingDraw(Buffer.from([9, 9]))));
      const [packet] = readAll(new PacketReader(transport), [chunk]);
      expect(packet!.payload.buffer, transport).to.equal(chunk.buffer);
      expect(packet!.payload.equals(payload), transport).to.equal(true);
    }
  });

  it('reassembles a frame that arrives one byte at a time', () => {
    for (const transport of TRANSPORTS) {
      const frame = Buffer.concat(
        encodePacket(transport, payload, paddingDraw(Buffer.from([1, 2, 3])), true),
      );
      const bytes = [...frame].map((b) => Buffer.from([b]));
      const packets = readAll(new PacketReader(transport), bytes);
      expect(packets.map((p) => [p.payload.toString('hex'), p.quickAck])).to.deep.equal([
        [payload.toString('hex'), true],
      ]);
    }
  });

  it('reads several packets from one chunk', () => {
    for (const transport of TRANSPORTS) {
      const frames = [payload, payload.subarray(0, 4), payload.subarray(8)].map((p) =>
        Buffer.concat(encodePacket(transport, p)),
      );
      const packets = readAll(new PacketReader(transport), [Buffer.concat(frames)]);
      expect(
        packets.map((p) => p.payload.length),
        transport,
      ).to.deep.equal([16, 4, 8]);
    }
  });

  function expectRefused(transport: Transport, frame: string, code: string, maxPacket?: number): void {
    const reader = new PacketReader(transport, maxPacket);
    reader.push(Buffer.from(frame, 'hex'));
    expect(() => reader.next())
      .to.throw(ProtocolError)
      .with.property('code', code);
    expect(() => reader.next(), 'the reader stays failed').to.throw(ProtocolError);
  }

  it('refuses an abridged long form for a length that fits the short form', () => {
    expectRefused('abridged', '7f7e0000', 'ERR_TRANSPORT_OVERLONG');
    expectRefused('abridged', 'ff010000', 'ERR_TRANSPORT_OVERLONG');
  });

  it('refuses an intermediate length that is not a multiple of 4', () => {
    expectRefused('intermediate', '09000000', 'ERR_TRANSPORT_UNALIGNED');
  });

  it('refuses empty packets, including padded frames of padding only', () => {
    expectRefused('abridged', '00', 'ERR_TRANSPORT_EMPTY');
    expectRefused('abridged', '80', 'ERR_TRANSPORT_EMPTY');
    expectRefused('intermediate', '00000000', 'ERR_TRANSPORT_EMPTY');
    expectRefused('padded', '03000000', 'ERR_TRANSPORT_EMPTY');
  });

  it('refuses a packet above the limit as soon as its header arrives', () => {
    expectRefused('intermediate', '04100000', 'ERR_TRANSPORT_TOO_LARGE', 4096);
    expectRefused('padded', '07100000', 'ERR_TRANSPORT_TOO_LARGE', 4096);
    expectRefused('abridged', '7f010400', 'ERR_TRANSPORT_TOO_LARGE', 4096);
    expectRefused('intermediate', 'fcffff7f', 'ERR_TRANSPORT_TOO_LARGE');
    // 1 044 480 bytes is the largest packet a client may send (§3.5); one word more is refused.
    const atLimit = new PacketReader('intermediate');
    atLimit.push(Buffer.from('00f00f00', 'hex'));
    expect(atLimit.next()).to.equal(undefined);
    expectRefused('intermediate', '04f00f00', 'ERR_TRANSPORT_TOO_LARGE');
  });

  it('holds only what has arrived of a large packet announced by a stalling peer', () => {
    const reader = new PacketReader('intermediate');
    reader.push(Buffer.from('00f00f0001020304', 'hex'));
    expect(reader.next()).to.equal(undefined);
    expect(reader.buffered).to.equal(4);
  });

  it('writers refuse payloads that are not whole words and quick-ack tokens that are not 4 bytes', () => {
    for (const transport of TRANSPORTS) {
      expect(() => encodePacket(transport, Buffer.alloc(6))).to.throw(ProtocolError);
      expect(() => encodeQuickAck(transport, Buffer.alloc(3))).to.throw(ProtocolError);
    }
  });
});

describe('packet reader and writers (properties)', () => {
  const transport = fc.constantFrom(...TRANSPORTS);
  const payload = fc
    .integer({ min: 1, max: 600 })
    .chain((words) => fc.uint8Array({ minLength: words * 4, maxLength: words * 4 }))
    .map((a) => Buffer.from(a));

  /** Splits `bytes` at the given relative cut points (each in [0, 1)). */
  function cut(bytes: Buffer, cuts: number[]): Buffer[] {
    const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
    const chunks: Buffer[] = [];
    let start = 0;
    for (const p of points) {
      chunks.push(bytes.subarray(start, p));
      start = p;
    }
    chunks.push(bytes.subarray(start));
    return chunks;
  }

  it('every packet written is read back unchanged, however the stream is cut', () => {
    fc.assert(
      fc.property(
        transport,
        fc.array(fc.record({ payload, quickAck: fc.boolean() }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { maxLength: 20 }),
        (t, packets, cuts) => {
          const stream = Buffer.concat(
            packets.flatMap((p) => encodePacket(t, p.payload, undefined, p.quickAck)),
          );
          const read = readAll(new PacketReader(t), cut(stream, cuts));
          expect(read.map((p) => p.payload.toString('hex'))).to.deep.equal(
            packets.map((p) => p.payload.toString('hex')),
          );
          expect(read.map((p) => p.quickAck)).to.deep.equal(packets.map((p) => p.quickAck));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('arbitrary bytes either give packets or a ProtocolError, and memory stays bounded', () => {
    const maxPacket = 256;
    fc.assert(
      fc.property(transport, fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 30 }), (t, chunks) => {
        const reader = new PacketReader(t, maxPacket);
        try {
          for (const chunk of chunks) {
            reader.push(Buffer.from(chunk));
            for (let p = reader.next(); p; p = reader.next()) {
              expect(p.payload.length % 4).to.equal(0);
              expect(p.payload.length).to.be.within(4, maxPacket);
            }
            // Drained: at most one incomplete packet (and part of its header) is held.
            expect(reader.buffered).to.be.at.most(maxPacket + 3);
          }
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
      }),
      { numRuns: 500 },
    );
  });
});
