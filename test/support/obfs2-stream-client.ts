// A test client that reads what the proxy sends exactly as a Telegram app does: the decrypted
// stream in the client's transport, where a quick ack (§3.4) is 4 bytes with the top bit set and
// no length, and packets are framed as in §3.1-§3.3. (obfs2-client.ts splits packets only, which
// is all a DC sends; in middle mode the proxy itself writes quick acks into the stream.)
import { type Cipheriv, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Transport } from '../../proxy/src/protocol/obfuscated2.js';
import { encodePacket } from '../../proxy/src/protocol/transports.js';
import { openTestSocket } from './client-socket.js';
import { createClientHeader } from './obfuscated2-client-header.js';
import { parseSecretParam } from './secret-param-reader.js';

export interface Obfs2StreamClientOptions {
  readonly port: number;
  /** A link's secret parameter: plain hex or `dd` + hex. */
  readonly secret: string;
  /** Default: padded for a `dd` secret, intermediate otherwise. */
  readonly transport?: Transport;
  /** DC index written into the header. Default 2. */
  readonly dc?: number;
  /** Default timeout of connect() and next(), in ms. Default 5000. */
  readonly timeoutMs?: number;
}

/** One thing the proxy sent: a packet (padding removed) or a quick ack (the 4 bytes as received). */
export type ServerMessage =
  | { readonly kind: 'packet'; readonly payload: Buffer }
  | { readonly kind: 'quick-ack'; readonly bytes: Buffer };

const QUICK_ACK_BIT = 0x80000000;

export class Obfs2StreamClient {
  readonly rawSocket: Socket;
  readonly transport: Transport;
  readonly #encryptor: Cipheriv;
  readonly #decryptor: Cipheriv;
  readonly #timeoutMs: number;
  #stream: Buffer = Buffer.alloc(0);
  #closed = false;
  #wake: (() => void) | undefined;
  readonly #closedPromise: Promise<void>;

  private constructor(
    socket: Socket,
    transport: Transport,
    encryptor: Cipheriv,
    decryptor: Cipheriv,
    timeoutMs: number,
  ) {
    this.rawSocket = socket;
    this.transport = transport;
    this.#encryptor = encryptor;
    this.#decryptor = decryptor;
    this.#timeoutMs = timeoutMs;
    socket.on('data', (chunk: Buffer) => {
      this.#stream = Buffer.concat([this.#stream, this.#decryptor.update(chunk)]);
      this.#wake?.();
    });
    this.#closedPromise = new Promise((resolve) =>
      socket.once('close', () => {
        this.#closed = true;
        this.#wake?.();
        resolve();
      }),
    );
  }

  /** Connects to 127.0.0.1:`port` and sends the obfuscated2 header. */
  static async connect(options: Obfs2StreamClientOptions): Promise<Obfs2StreamClient> {
    const parsed = parseSecretParam(options.secret);
    if (parsed.kind === 'ee') throw new Error('obfs2 stream client: fake TLS (ee) secrets are not supported');
    const transport = options.transport ?? (parsed.kind === 'dd' ? 'padded' : 'intermediate');
    const keys = createClientHeader(randomBytes, parsed.key, transport, options.dc ?? 2);
    const timeoutMs = options.timeoutMs ?? 5000;
    const socket = await openTestSocket(options.port, timeoutMs, 'obfs2 stream client');
    socket.write(keys.wire);
    return new Obfs2StreamClient(socket, transport, keys.encryptor, keys.decryptor, timeoutMs);
  }

  /** Our port: the client port the proxy reports to the middle proxy. */
  get localPort(): number {
    return this.rawSocket.localPort!;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Frames, encrypts and sends one packet (a multiple of 4 bytes), optionally asking for a quick ack. */
  send(payload: Buffer, quickAck = false): void {
    const plain = Buffer.concat(encodePacket(this.transport, payload, randomBytes, quickAck));
    this.rawSocket.write(this.#encryptor.update(plain));
  }

  /** The next packet or quick ack; rejects on timeout or when the connection closes first. */
  async next(timeoutMs = this.#timeoutMs): Promise<ServerMessage> {
    const deadline = Date.now() + timeoutMs;
    if (this.transport === 'abridged') {
      const first = (await this.#read(1, deadline))[0]!;
      // A quick ack is the token reversed, so its first byte carries the token's top bit.
      if (first & 0x80)
        return {
          kind: 'quick-ack',
          bytes: Buffer.concat([Buffer.from([first]), await this.#read(3, deadline)]),
        };
      const words = first === 0x7f ? (await this.#read(3, deadline)).readUIntLE(0, 3) : first;
      return { kind: 'packet', payload: await this.#read(words * 4, deadline) };
    }
    const head = await this.#read(4, deadline);
    const word = head.readUInt32LE(0);
    if ((word & QUICK_ACK_BIT) !== 0) return { kind: 'quick-ack', bytes: head };
    const body = await this.#read(word, deadline);
    // Padded: servers add 0..3 bytes, so the packet is the whole words (§3.3).
    return { kind: 'packet', payload: this.transport === 'padded' ? body.subarray(0, word & ~3) : body };
  }

  /** The next message, which must be a packet. */
  async receive(timeoutMs = this.#timeoutMs): Promise<Buffer> {
    const message = await this.next(timeoutMs);
    if (message.kind !== 'packet') throw new Error(`obfs2 stream client: expected a packet, got a quick ack`);
    return message.payload;
  }

  /** Resolves when the connection is closed; rejects after the timeout. */
  async waitForClose(timeoutMs = this.#timeoutMs): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`obfs2 stream client: still open after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.#closedPromise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes our side and waits for the socket to be gone. */
  async close(): Promise<void> {
    this.rawSocket.destroy();
    await this.#closedPromise;
  }

  async #read(n: number, deadline: number): Promise<Buffer> {
    while (this.#stream.length < n) {
      if (this.#closed) throw new Error('obfs2 stream client: connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('obfs2 stream client: nothing (more) received in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    const out = this.#stream.subarray(0, n);
    this.#stream = this.#stream.subarray(n);
    return out;
  }
}
