// The pure parts of site profiles: reading a server's flight, summing samples up, the layout of
// our answer, and the record-size schedule after the handshake.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { buildClientHello } from '../../../proxy/src/fake-tls/client.js';
import {
  DYNAMIC_RECORDS,
  RecordSchedule,
  scheduleForSite,
} from '../../../proxy/src/fake-tls/record-schedule.js';
import {
  type FlightParseError,
  type FlightSample,
  parseServerFlight,
} from '../../../proxy/src/fake-tls/server-flight.js';
import { buildServerHello } from '../../../proxy/src/fake-tls/server-hello.js';
import {
  answerLayout,
  fallbackProfile,
  helloKind,
  type SiteProfile,
  shapeOf,
} from '../../../proxy/src/fake-tls/site-profile.js';

function record(type: number, body: Buffer): Buffer {
  const h = Buffer.from([type, 3, 3, 0, 0]);
  h.writeUInt16BE(body.length, 3);
  return Buffer.concat([h, body]);
}

function serverHello(extensions: [number, Buffer][], suite = 0x1302): Buffer {
  const exts = Buffer.concat(
    extensions.map(([t, d]) => {
      const h = Buffer.alloc(4);
      h.writeUInt16BE(t, 0);
      h.writeUInt16BE(d.length, 2);
      return Buffer.concat([h, d]);
    }),
  );
  const body = Buffer.concat([
    Buffer.from([3, 3]),
    randomBytes(32),
    Buffer.from([32]),
    randomBytes(32),
    Buffer.from([suite >> 8, suite & 0xff, 0, exts.length >> 8, exts.length & 0xff]),
    exts,
  ]);
  const hs = Buffer.concat([Buffer.from([2, 0, body.length >> 8, body.length & 0xff]), body]);
  return record(0x16, hs);
}

const SV = Buffer.from([3, 4]);
const KS = Buffer.concat([Buffer.from([0x00, 0x1d, 0x00, 0x20]), randomBytes(32)]);
const CCS = record(0x14, Buffer.from([1]));

describe('site profiles: reading what a site sent', () => {
  it('reads the extensions in order, the cipher, the CCS with the hello and the encrypted records', () => {
    const data = Buffer.concat([
      serverHello([
        [0x2b, SV],
        [0x33, KS],
      ]),
      CCS,
      record(0x17, randomBytes(30)),
      record(0x17, randomBytes(2500)),
    ]);
    const s = parseServerFlight([{ at: 5, data }]);
    expect(s.extensions.map((e) => e.type)).to.deep.equal([0x2b, 0x33]);
    expect(s.cipherSuite).to.equal(0x1302);
    expect(s.ccs).to.equal('with-hello');
    expect(s.records).to.deep.equal([30, 2500]);
    expect(s.firstByteMs).to.equal(5);
  });

  it('tells a CCS in a later read, a missing CCS, and a flight cut off mid-record', () => {
    const hello = serverHello([[0x33, KS]]);
    const late = parseServerFlight([
      { at: 1, data: hello },
      { at: 9, data: Buffer.concat([CCS, record(0x17, randomBytes(100))]) },
    ]);
    expect(late.ccs).to.equal('separate');
    expect(late.recordTimes).to.deep.equal([8]);
    const none = parseServerFlight([{ at: 1, data: Buffer.concat([hello, record(0x17, randomBytes(10))]) }]);
    expect(none.ccs).to.equal('none');
    const cut = record(0x17, randomBytes(100)).subarray(0, 50);
    expect(parseServerFlight([{ at: 1, data: Buffer.concat([hello, CCS, cut]) }]).records).to.deep.equal([]);
  });

  it('refuses an answer that is no TLS handshake: an alert, plain HTTP, nothing', () => {
    const codes = [
      [record(0x15, Buffer.from([2, 40]))],
      [Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')],
      [],
    ].map((datas) => {
      try {
        parseServerFlight(datas.map((data) => ({ at: 0, data })));
        return 'parsed';
      } catch (err) {
        return (err as FlightParseError).code;
      }
    });
    expect(codes).to.deep.equal(['ERR_FLIGHT_NOT_TLS', 'ERR_FLIGHT_NOT_TLS', 'ERR_FLIGHT_EMPTY']);
  });
});

function sampleOf(records: number[], ccs: FlightSample['ccs'] = 'with-hello'): FlightSample {
  return {
    version: 0x0303,
    cipherSuite: 0x1301,
    extensions: [
      { type: 0x2b, data: '0304' },
      { type: 0x33, data: KS.toString('hex') },
    ],
    ccs,
    records,
    recordTimes: records.map((_, i) => i * 2),
    firstByteMs: 1,
  };
}

describe('site profiles: the answer follows the profile', () => {
  const profile = (samples: FlightSample[]): SiteProfile => ({
    domain: 'example.com',
    target: '127.0.0.1:443',
    source: 'measured',
    measuredAt: Date.now(),
    shapes: { modern: shapeOf(samples)! },
  });

  it('sums samples up into the range of first-flight bytes and the usual CCS placement', () => {
    const shape = shapeOf([
      sampleOf([20, 3000, 260, 53]),
      sampleOf([20, 3001, 260, 53]),
      sampleOf([], 'none'),
    ])!;
    expect(shape.samples).to.equal(2);
    expect(shape.flightBytes).to.deep.equal({ min: 3353, max: 3354 });
    expect(shape.records).to.deep.equal({ min: 4, max: 4 });
    expect(shape.ccs).to.equal('with-hello');
    expect(shape.gapsMs).to.deep.equal([2, 2, 2, 2, 2, 2]);
  });

  it('draws our one record within the site’s observed wire range, with the site’s extensions', () => {
    const p = profile([sampleOf([20, 4000, 260, 53]), sampleOf([20, 4100, 260, 53])]);
    for (let i = 0; i < 50; i++) {
      const layout = answerLayout(p, 'modern', 0x1301, randomBytes);
      expect(layout.payloadLength + 5).to.be.within(4353, 4453);
      expect(layout.extensions!.map((e) => e.type)).to.deep.equal([0x2b, 0x33]);
      // A fresh key share each time, never the site's own.
      expect(layout.extensions![1]!.data.subarray(4).equals(KS.subarray(4))).to.equal(false);
    }
  });

  it('uses the other hello kind’s shape when one is missing, and the fallback without a profile', () => {
    const p = profile([sampleOf([5000])]);
    expect(answerLayout(p, 'classic', 0x1301, randomBytes).payloadLength).to.equal(5000);
    const fb = answerLayout(fallbackProfile('example.com', 'x:1'), 'modern', 0x1303, randomBytes);
    expect(fb.extensions).to.equal(undefined);
    expect(fb.cipherSuite).to.equal(0x1303);
    expect(fb.payloadLength).to.be.within(2500, 4699);
  });

  it('answers a classic hello with an X25519 share when only the post-quantum shape was measured', () => {
    const hybrid = `11ec0460${'ab'.repeat(1120)}`;
    const s = sampleOf([3000]);
    const p = profile([{ ...s, extensions: [s.extensions[0]!, { type: 0x33, data: hybrid }] }]);
    const classic = answerLayout(p, 'classic', 0x1301, randomBytes).extensions!;
    expect(classic[1]!.data.subarray(0, 4).toString('hex')).to.equal('001d0020');
    expect(classic[1]!.data.length).to.equal(36);
    const modern = answerLayout(p, 'modern', 0x1301, randomBytes).extensions!;
    expect(modern[1]!.data.subarray(0, 4).toString('hex')).to.equal('11ec0460');
    expect(modern[1]!.data.length).to.equal(4 + 1120);
  });

  it('keeps a flight larger than one record can carry at 16384 bytes', () => {
    expect(
      answerLayout(profile([sampleOf([16384, 16384])]), 'modern', 0x1301, randomBytes).payloadLength,
    ).to.equal(16384);
  });

  it('builds a ServerHello that carries the site’s extensions byte for byte, key shares aside', () => {
    const p = profile([sampleOf([3000])]);
    const layout = answerLayout(p, 'modern', 0x1301, randomBytes);
    const answer = buildServerHello({
      clientRandom: randomBytes(32),
      sessionId: randomBytes(32),
      secret: randomBytes(16),
      cipherSuite: layout.cipherSuite,
      extensions: layout.extensions,
      payloadLength: layout.payloadLength,
      random: randomBytes,
    });
    const parsed = parseServerFlight([{ at: 0, data: answer }]);
    expect(parsed.extensions.map((e) => [e.type, e.data.length / 2])).to.deep.equal([
      [0x2b, 2],
      [0x33, 36],
    ]);
    expect(parsed.records).to.deep.equal([3000]);
    expect(parsed.ccs).to.equal('with-hello');
  });

  it('tells the apps’ two hello shapes apart by the post-quantum key share', () => {
    const make = (shape: 'classic' | 'modern') =>
      buildClientHello({ secret: randomBytes(16), domain: 'a.b', now: 0, random: randomBytes, shape }).hello;
    expect(helloKind(make('classic'))).to.equal('classic');
    expect(helloKind(make('modern'))).to.equal('modern');
    expect(helloKind(randomBytes(20))).to.equal('classic');
  });
});

describe('record sizes after the handshake', () => {
  const sizes = (wire: Buffer): number[] => {
    const out: number[] = [];
    for (let p = 0; p < wire.length; p += 5 + wire.readUInt16BE(p + 3)) {
      expect(wire[p]).to.equal(0x17);
      out.push(wire.readUInt16BE(p + 3));
    }
    return out;
  };

  it('start at 1386 bytes on the wire (1369 + 17), grow to 4246 after 40 records and to 16401 after 80', () => {
    let now = 0;
    const schedule = new RecordSchedule(undefined, () => now);
    const got = sizes(schedule.wrap(randomBytes(40 * 1386 + 40 * 4246 + 3 * 16401)));
    expect(got.slice(0, 40).every((s) => s === 1386)).to.equal(true);
    expect(got.slice(40, 80).every((s) => s === 4246)).to.equal(true);
    expect(got.slice(80)).to.deep.equal([16401, 16401, 16401]);
    now += 500;
    expect(sizes(schedule.wrap(randomBytes(20000)))).to.deep.equal([16401, 3599]);
    now += 1001;
    expect(sizes(schedule.wrap(randomBytes(2000)))).to.deep.equal([1386, 614]);
  });

  it('follow a measured site: its largest record, and no small start if it had none', () => {
    expect(scheduleForSite(undefined)).to.equal(DYNAMIC_RECORDS);
    expect(scheduleForSite([250, 90])).to.equal(DYNAMIC_RECORDS);
    // A site with 4 KB buffers that writes full records from the start.
    expect(scheduleForSite([250, 4113, 4113, 4113, 700])).to.include({
      small: 4113,
      medium: 4113,
      large: 4113,
    });
    // A site with dynamic sizing up to full records.
    expect(scheduleForSite([250, 1386, 1386, 4246, 16401])).to.include({
      small: 1386,
      medium: 4246,
      large: 16401,
    });
    // Nothing beyond what a TLS 1.3 server can send.
    expect(scheduleForSite([1386, 20000]).large).to.equal(16401);
  });

  it('keeps the bytes intact and in order', () => {
    const data = randomBytes(100_000);
    const wire = new RecordSchedule().wrap(data);
    const parts: Buffer[] = [];
    for (let p = 0; p < wire.length; p += 5 + wire.readUInt16BE(p + 3)) {
      parts.push(wire.subarray(p + 5, p + 5 + wire.readUInt16BE(p + 3)));
    }
    expect(Buffer.concat(parts).equals(data)).to.equal(true);
    expect(new RecordSchedule().wrap(Buffer.alloc(0)).length).to.equal(0);
  });
});
