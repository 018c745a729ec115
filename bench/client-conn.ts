// One benchmark connection as a Telegram app opens it: the obfuscated2 header for a plain or `dd`
// secret (docs/protocol.md §2), optionally inside fake TLS for `ee` (§4.3, §4.8), or the
// secretless header a proxy sends to a DC (§5.2) when the relay under test forwards bytes as they
// are. Packets go out framed by the transport; every packet the echo DC sends back is checked
// byte for byte against what was sent, in order.
import { type Cipheriv, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import {
  buildClientHello,
  CLIENT_MAX_RECORD_PAYLOAD,
  verifyServerHello,
} from '../proxy/src/fake-tls/client.js';
import { CHANGE_CIPHER_SPEC, TlsRecordReader, wrapRecords } from '../proxy/src/fake-tls/records.js';
import {
  createClientHeader,
  ctrCipher,
  dcHeaderFromInit,
  HEADER_LEN,
  isAcceptableRandomHeader,
  type RandomSource,
  type Transport,
  transportTag,
} from '../proxy/src/protocol/obfuscated2.js';
import { encodePacket, PacketReader } from '../proxy/src/protocol/transports.js';

/** plain: 16-byte secret, intermediate; dd: padded; ee: fake TLS + padded; secretless: no secret. */
export type ClientMode = 'plain' | 'dd' | 'ee' | 'secretless';

export interface ConnectOptions {
  readonly port: number;
  readonly mode: ClientMode;
  readonly secret: Buffer;
  /** The SNI of an `ee` hello. */
  readonly domain: string;
  readonly timeoutMs: number;
}

const TRANSPORT: Record<ClientMode, Transport> = {
  plain: 'intermediate',
  dd: 'padded',
  ee: 'padded',
  secretless: 'intermediate',
};
const DC_INDEX = 2;

/** Cheap randomness for padding lengths and bytes: a rotating window over one random block. */
const PAD_POOL = randomBytes(65_536);
let padAt = 0;
const padRandom: RandomSource = (size) => {
  if (padAt + size > PAD_POOL.length) padAt = 0;
  const out = PAD_POOL.subarray(padAt, padAt + size);
  padAt += size;
  return out;
};

interface Keys {
  readonly wire: Buffer;
  readonly encryptor: Cipheriv;
  readonly decryptor: Cipheriv;
}

function secretlessKeys(transport: Transport): Keys {
  for (let draw = 0; draw < 1000; draw++) {
    const init = randomBytes(HEADER_LEN);
    if (!isAcceptableRandomHeader(init)) continue;
    transportTag(transport).copy(init, 56);
    init.writeInt16LE(DC_INDEX, 60);
    const h = dcHeaderFromInit(init);
    return { wire: h.wire, encryptor: h.encryptor, decryptor: ctrCipher(h.decrypt) };
  }
  throw new Error('no acceptable random header in 1000 draws');
}

function headerKeys(mode: ClientMode, secret: Buffer): Keys {
  if (mode === 'secretless') return secretlessKeys(TRANSPORT[mode]);
  return createClientHeader(randomBytes, secret, TRANSPORT[mode], DC_INDEX);
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string, onTimeout: () => void) {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        onTimeout();
        reject(new Error(`${what}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
}

export class BenchConnection {
  /** Bytes on the wire, both counted by this side: what we wrote and what we read. */
  sentBytes = 0;
  receivedBytes = 0;
  /** Packets echoed back and found identical to what we sent. */
  verifiedPackets = 0;
  /** Payload bytes sent and not yet echoed. */
  inFlight = 0;
  /** Called after every verified packet. */
  onEcho: (() => void) | undefined;
  /** Called once when the connection fails (closed early, wrong bytes, bad framing). */
  onFailure: ((err: Error) => void) | undefined;
  failure: Error | undefined;

  readonly #socket: Socket;
  readonly #mode: ClientMode;
  readonly #transport: Transport;
  #keys: Keys | undefined;
  readonly #reader: PacketReader;
  #tls: TlsRecordReader | undefined;
  #firstTlsWrite = true;
  readonly #expected: Buffer[] = [];
  #expectedHead = 0;
  #closedByUs = false;

  private constructor(socket: Socket, mode: ClientMode) {
    this.#socket = socket;
    this.#mode = mode;
    this.#transport = TRANSPORT[mode];
    this.#reader = new PacketReader(this.#transport);
    socket.on('error', (err) => this.#fail(err));
    socket.once('close', () => {
      if (!this.#closedByUs) this.#fail(new Error('connection closed by the peer'));
    });
  }

  /**
   * Connects and authenticates; `first` is sent in the same write as the obfuscated2 header, as
   * apps do with their first packet.
   */
  static async open(options: ConnectOptions, first?: Buffer): Promise<BenchConnection> {
    const socket = connect({ host: '127.0.0.1', port: options.port, noDelay: true });
    const conn = new BenchConnection(socket, options.mode);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      }),
      options.timeoutMs,
      'connect',
      () => socket.destroy(),
    );
    let early: Buffer | undefined;
    if (options.mode === 'ee') {
      early = await withTimeout(conn.#tlsHandshake(options), options.timeoutMs, 'fake-TLS hello', () =>
        socket.destroy(),
      );
    }
    conn.#keys = headerKeys(options.mode, options.secret);
    socket.on('data', (chunk: Buffer) => conn.#onData(chunk));
    // Application data that came with the proxy's answer belongs to the stream.
    if (early !== undefined && early.length > 0) conn.#onData(early, false);
    const header = conn.#keys.wire;
    if (first === undefined) {
      conn.#writeWire(header);
    } else {
      conn.#expect(first);
      const frame = conn.#encrypt(Buffer.concat(encodePacket(conn.#transport, first, padRandom)));
      conn.#writeWire(Buffer.concat([header, frame]));
    }
    return conn;
  }

  /** Frames, encrypts and writes one packet; false when the socket asks us to wait for 'drain'. */
  send(payload: Buffer): boolean {
    this.#expect(payload);
    return this.#writeWire(this.#encrypt(Buffer.concat(encodePacket(this.#transport, payload, padRandom))));
  }

  get socket(): Socket {
    return this.#socket;
  }

  close(): void {
    this.#closedByUs = true;
    this.#socket.destroy();
  }

  /** Sends the hello and checks the answer; resolves with any bytes that followed it. */
  async #tlsHandshake(options: ConnectOptions): Promise<Buffer> {
    const hello = buildClientHello({
      secret: options.secret,
      domain: options.domain,
      now: Math.floor(Date.now() / 1000),
      random: randomBytes,
    });
    const socket = this.#socket;
    this.#tls = new TlsRecordReader();
    let received = Buffer.alloc(0);
    return new Promise<Buffer>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        this.receivedBytes += chunk.length;
        received = Buffer.concat([received, chunk]);
        try {
          const check = verifyServerHello(received, hello.clientRandom, options.secret);
          if (check.kind === 'need-more') return;
          socket.off('data', onData);
          socket.off('close', onClose);
          resolve(Buffer.from(check.rest));
        } catch (err) {
          reject(err);
        }
      };
      const onClose = (): void => reject(new Error('closed during the fake-TLS hello'));
      socket.on('data', onData);
      socket.once('close', onClose);
      this.#writeRaw(hello.hello);
    });
  }

  #encrypt(plain: Buffer): Buffer {
    return this.#keys!.encryptor.update(plain);
  }

  #writeWire(bytes: Buffer): boolean {
    if (this.#mode !== 'ee') return this.#writeRaw(bytes);
    const records = wrapRecords(bytes, CLIENT_MAX_RECORD_PAYLOAD);
    if (!this.#firstTlsWrite) return this.#writeRaw(records);
    this.#firstTlsWrite = false;
    return this.#writeRaw(Buffer.concat([CHANGE_CIPHER_SPEC, records]));
  }

  #writeRaw(bytes: Buffer): boolean {
    this.sentBytes += bytes.length;
    return this.#socket.write(bytes);
  }

  #expect(payload: Buffer): void {
    this.#expected.push(payload);
    this.inFlight += payload.length;
  }

  #onData(chunk: Buffer, count = true): void {
    if (this.failure) return;
    if (count) this.receivedBytes += chunk.length;
    try {
      const stream = this.#tls ? this.#tls.push(chunk) : chunk;
      if (stream.length === 0) return;
      this.#reader.push(this.#keys!.decryptor.update(stream));
      for (let p = this.#reader.next(); p; p = this.#reader.next()) this.#verify(p.payload);
    } catch (err) {
      this.#fail(err as Error);
    }
  }

  #verify(payload: Buffer): void {
    const expected = this.#expected[this.#expectedHead];
    if (expected === undefined) throw new Error(`unexpected packet of ${payload.length} bytes`);
    if (!payload.equals(expected)) {
      throw new Error(`echoed packet ${this.verifiedPackets + 1} differs from the one sent`);
    }
    this.#expectedHead++;
    if (this.#expectedHead >= 1024) {
      this.#expected.splice(0, this.#expectedHead);
      this.#expectedHead = 0;
    }
    this.inFlight -= expected.length;
    this.verifiedPackets++;
    this.onEcho?.();
  }

  #fail(err: Error): void {
    if (this.failure || this.#closedByUs) return;
    this.failure = err;
    this.#socket.destroy();
    this.onFailure?.(err);
  }
}
