// A Telegram app with an `ee` link, for tests: opens a connection to 127.0.0.1, sends a fake-TLS
// ClientHello (docs/protocol.md §4.3), checks the proxy's answer the way tdlib does (§4.7), then
// speaks obfuscated2 inside application-data records (§4.8): ChangeCipherSpec once, then records
// of at most 2878 bytes, as tdlib writes them.
import { type Cipheriv, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import {
  buildClientHello,
  CLIENT_MAX_RECORD_PAYLOAD,
  splitHelloRecords,
  verifyServerHello,
} from '../../proxy/src/fake-tls/client.js';
import { CHANGE_CIPHER_SPEC, TlsRecordReader, wrapRecords } from '../../proxy/src/fake-tls/records.js';
import {
  createClientHeader,
  type RandomSource,
  type Transport,
} from '../../proxy/src/protocol/obfuscated2.js';
import { encodePacket, type Packet, PacketReader } from '../../proxy/src/protocol/transports.js';
import { openTestSocket, PacketInbox } from './client-socket.js';

export interface FakeTlsClientOptions {
  port: number;
  /** The 16-byte key (the part of the ee secret between `ee` and the domain). */
  secret: Buffer;
  /** Written into the SNI; no server_name extension when undefined. */
  domain: string | undefined;
  /** 'classic' (517 bytes) or 'modern' (~1.7 KB, the shape current apps send). Default modern. */
  shape?: 'classic' | 'modern';
  /** Padded (what tdlib sends inside TLS) by default. */
  transport?: Transport;
  dc?: number;
  /** The client's clock in Unix seconds; default now. */
  now?: number;
  /** Split the hello into TLS records with these payload sizes (the last takes what is left). */
  helloRecords?: readonly number[];
  /** Send the hello in TCP writes of these sizes, with a pause between (the last takes the rest). */
  helloSegments?: readonly number[];
  /** Bytes sent before the hello: a PROXY protocol header. */
  preamble?: Buffer;
  random?: RandomSource;
  /** Draws the obfuscated2 header inside TLS (default: `random`): replay a recorded one with it. */
  headerRandom?: RandomSource;
  timeoutMs?: number;
}

const LABEL = 'fake TLS client';
const SEGMENT_PAUSE_MS = 20;

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Writes `bytes` in pieces of the given sizes with a pause between, the last piece the rest. */
export async function writeInSegments(
  socket: Socket,
  bytes: Buffer,
  sizes: readonly number[],
): Promise<void> {
  let from = 0;
  for (const size of sizes) {
    if (from >= bytes.length) return;
    socket.write(bytes.subarray(from, from + size));
    from += size;
    await pause(SEGMENT_PAUSE_MS);
  }
  if (from < bytes.length) socket.write(bytes.subarray(from));
}

export class FakeTlsClient {
  readonly rawSocket: Socket;
  readonly transport: Transport;
  /** The hello as sent (one record, before any splitting): replay it to test the replay cache. */
  readonly hello: Buffer;
  readonly #encryptor: Cipheriv;
  readonly #decryptor: Cipheriv;
  readonly #records = new TlsRecordReader();
  readonly #packets: PacketReader;
  readonly #timeoutMs: number;
  readonly #inbox: PacketInbox;

  private constructor(
    socket: Socket,
    hello: Buffer,
    transport: Transport,
    ciphers: { encryptor: Cipheriv; decryptor: Cipheriv },
    timeoutMs: number,
  ) {
    this.rawSocket = socket;
    this.hello = hello;
    this.transport = transport;
    this.#encryptor = ciphers.encryptor;
    this.#decryptor = ciphers.decryptor;
    this.#packets = new PacketReader(transport);
    this.#timeoutMs = timeoutMs;
    this.#inbox = new PacketInbox(socket, LABEL);
  }

  /**
   * Connects, sends the hello, waits for an authentic answer, then sends ChangeCipherSpec and the
   * obfuscated2 header in the first record. Rejects when the answer is missing or not authentic.
   */
  static async connect(options: FakeTlsClientOptions): Promise<FakeTlsClient> {
    const random = options.random ?? randomBytes;
    const timeoutMs = options.timeoutMs ?? 5000;
    const transport = options.transport ?? 'padded';
    const { hello, clientRandom } = buildClientHello({
      secret: options.secret,
      ...(options.domain === undefined ? {} : { domain: options.domain }),
      now: options.now ?? Math.floor(Date.now() / 1000),
      random,
      shape: options.shape ?? 'modern',
    });
    const socket = await openTestSocket(options.port, timeoutMs, LABEL);
    const answer = FakeTlsClient.#awaitAnswer(socket, clientRandom, options.secret, timeoutMs);
    if (options.preamble) socket.write(options.preamble);
    const wire = options.helloRecords ? splitHelloRecords(hello, options.helloRecords) : hello;
    await writeInSegments(socket, wire, options.helloSegments ?? []);
    let rest: Buffer;
    try {
      rest = await answer;
    } catch (err) {
      socket.destroy();
      throw err;
    }
    const header = createClientHeader(
      options.headerRandom ?? random,
      options.secret,
      transport,
      options.dc ?? 2,
    );
    const client = new FakeTlsClient(socket, hello, transport, header, timeoutMs);
    socket.on('data', (chunk: Buffer) => client.#onData(chunk));
    if (rest.length > 0) client.#onData(rest);
    socket.write(Buffer.concat([CHANGE_CIPHER_SPEC, wrapRecords(header.wire, CLIENT_MAX_RECORD_PAYLOAD)]));
    return client;
  }

  static #awaitAnswer(
    socket: Socket,
    clientRandom: Buffer,
    secret: Buffer,
    timeoutMs: number,
  ): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let received = Buffer.alloc(0);
      const done = (err: Error | undefined, rest?: Buffer): void => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        if (err) reject(err);
        else resolve(rest!);
      };
      const onData = (chunk: Buffer): void => {
        received = Buffer.concat([received, chunk]);
        try {
          const check = verifyServerHello(received, clientRandom, secret);
          if (check.kind === 'ok') done(undefined, Buffer.from(check.rest));
        } catch (err) {
          done(err as Error);
        }
      };
      const onClose = (): void => done(new Error('fake TLS client: closed before the ServerHello'));
      const timer = setTimeout(
        () => done(new Error(`fake TLS client: no ServerHello within ${timeoutMs} ms`)),
        timeoutMs,
      );
      socket.on('data', onData);
      socket.once('close', onClose);
    });
  }

  /** Frames, encrypts and sends one packet in records of at most 2878 bytes. */
  send(payload: Buffer): void {
    const plain = Buffer.concat(encodePacket(this.transport, payload));
    this.rawSocket.write(wrapRecords(this.#encryptor.update(plain), CLIENT_MAX_RECORD_PAYLOAD));
  }

  /** The next packet from the proxy; rejects on timeout, close or a bad record. */
  receive(timeoutMs = this.#timeoutMs): Promise<Packet> {
    return this.#inbox.receive(timeoutMs);
  }

  /** Resolves when the connection is closed; rejects after the timeout. */
  waitForClose(timeoutMs = this.#timeoutMs): Promise<void> {
    return this.#inbox.waitForClose(timeoutMs);
  }

  async close(): Promise<void> {
    this.rawSocket.destroy();
    await this.#inbox.closed;
  }

  #onData(chunk: Buffer): void {
    if (this.#inbox.failed) return;
    try {
      const data = this.#records.push(chunk);
      if (data.length === 0) return;
      this.#packets.push(this.#decryptor.update(data));
      for (let p = this.#packets.next(); p; p = this.#packets.next()) this.#inbox.push(p);
    } catch (err) {
      this.#inbox.fail(err instanceof Error ? err : new Error(String(err)));
      this.rawSocket.destroy();
    }
  }
}
