// What a real TLS server sent in answer to one ClientHello, read off the wire: the records of its
// first flight (ServerHello, ChangeCipherSpec, the encrypted records that carry the certificate)
// with the time each byte arrived. Pure: chunks in, a FlightSample out. Nothing is decrypted; the
// sizes, order and timing are what a censor can see, so they are what we copy.
import {
  RECORD_APPLICATION_DATA,
  RECORD_CHANGE_CIPHER_SPEC,
  RECORD_HANDSHAKE,
  RECORD_HEADER_LEN,
} from './records.js';

/** One socket read, `at` milliseconds after the hello was sent. */
export interface TimedChunk {
  readonly at: number;
  readonly data: Buffer;
}

export interface ServerHelloExtension {
  readonly type: number;
  /** The extension's body, hex. */
  readonly data: string;
}

export interface FlightSample {
  /** ServerHello.legacy_version (0x0303 for TLS 1.2 and 1.3 alike). */
  readonly version: number;
  readonly cipherSuite: number;
  /** In the order the server wrote them. */
  readonly extensions: readonly ServerHelloExtension[];
  /**
   * Where the ChangeCipherSpec was: 'with-hello' (in the same socket read as the end of the
   * ServerHello), 'separate' (a later read), 'none' (not sent).
   */
  readonly ccs: 'with-hello' | 'separate' | 'none';
  /** Payload sizes of the encrypted (application-data) records of the first flight. */
  readonly records: readonly number[];
  /** Milliseconds from the end of the ServerHello to each encrypted record's last byte. */
  readonly recordTimes: readonly number[];
  /** Milliseconds from sending the hello to the first byte of the answer. */
  readonly firstByteMs: number;
}

export class FlightParseError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'FlightParseError';
    this.code = code;
  }
}

interface Record {
  readonly type: number;
  readonly body: Buffer;
  /** Index of the chunk holding the record's last byte. */
  readonly endChunk: number;
  readonly endAt: number;
}

function splitRecords(chunks: readonly TimedChunk[]): Record[] {
  const all = Buffer.concat(chunks.map((c) => c.data));
  const ends: number[] = [];
  let sum = 0;
  for (const c of chunks) {
    sum += c.data.length;
    ends.push(sum);
  }
  const chunkOf = (offset: number): number => ends.findIndex((e) => e > offset);
  const records: Record[] = [];
  let pos = 0;
  while (pos + RECORD_HEADER_LEN <= all.length) {
    const type = all[pos]!;
    const length = all.readUInt16BE(pos + 3);
    if (pos + RECORD_HEADER_LEN + length > all.length) break; // cut off at the end of the read
    const last = pos + RECORD_HEADER_LEN + length - 1;
    const endChunk = chunkOf(last);
    records.push({
      type,
      body: all.subarray(pos + RECORD_HEADER_LEN, last + 1),
      endChunk,
      endAt: chunks[endChunk]!.at,
    });
    pos = last + 1;
  }
  return records;
}

function parseServerHello(body: Buffer): Pick<FlightSample, 'version' | 'cipherSuite' | 'extensions'> {
  // handshake header (4) | version (2) | random (32) | session id <0..32> | suite (2) | comp (1) | exts
  if (body.length < 4 + 2 + 32 + 1 || body[0] !== 0x02) {
    throw new FlightParseError('ERR_FLIGHT_NO_SERVER_HELLO', 'the first handshake record is no ServerHello');
  }
  const version = body.readUInt16BE(4);
  let p = 4 + 2 + 32;
  p += 1 + body[p]!;
  if (p + 3 > body.length) throw new FlightParseError('ERR_FLIGHT_SHORT', 'ServerHello cut short');
  const cipherSuite = body.readUInt16BE(p);
  p += 3;
  const extensions: ServerHelloExtension[] = [];
  if (p + 2 <= body.length) {
    const end = Math.min(body.length, p + 2 + body.readUInt16BE(p));
    p += 2;
    while (p + 4 <= end) {
      const type = body.readUInt16BE(p);
      const len = body.readUInt16BE(p + 2);
      extensions.push({ type, data: body.toString('hex', p + 4, Math.min(end, p + 4 + len)) });
      p += 4 + len;
    }
  }
  return { version, cipherSuite, extensions };
}

/**
 * Reads one server's answer. Throws FlightParseError when it does not start with a ServerHello
 * (an alert, plain HTTP, a HelloRetryRequest is still parsed as a ServerHello and rejected by the
 * caller through its random). Encrypted records are counted until the data ends.
 */
export function parseServerFlight(chunks: readonly TimedChunk[], helloSentAt = 0): FlightSample {
  if (chunks.length === 0) throw new FlightParseError('ERR_FLIGHT_EMPTY', 'the site sent nothing');
  const records = splitRecords(chunks);
  if (records[0] === undefined || records[0].type !== RECORD_HANDSHAKE) {
    throw new FlightParseError('ERR_FLIGHT_NOT_TLS', 'the site did not answer with a TLS handshake record');
  }
  // A ServerHello larger than the site's record limit (a post-quantum key share) spans records.
  let helloRecords = 1;
  while (records[helloRecords]?.type === RECORD_HANDSHAKE) helloRecords++;
  const first = records[helloRecords - 1]!;
  const hello = parseServerHello(Buffer.concat(records.slice(0, helloRecords).map((r) => r.body)));
  let ccs: FlightSample['ccs'] = 'none';
  const sizes: number[] = [];
  const times: number[] = [];
  for (const r of records.slice(helloRecords)) {
    if (r.type === RECORD_CHANGE_CIPHER_SPEC && sizes.length === 0 && ccs === 'none') {
      ccs = r.endChunk === first.endChunk ? 'with-hello' : 'separate';
    } else if (r.type === RECORD_APPLICATION_DATA) {
      sizes.push(r.body.length);
      times.push(Math.max(0, r.endAt - first.endAt));
    } else {
      break; // an alert or anything else ends the flight
    }
  }
  return {
    ...hello,
    ccs,
    records: sizes,
    recordTimes: times,
    firstByteMs: Math.max(0, chunks[0]!.at - helloSentAt),
  };
}
