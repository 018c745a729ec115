// A minimal obfuscated2 client for tests: opens a connection to 127.0.0.1, sends the 64-byte
// header, then writes and reads packets in one transport. With a secret it is a Telegram app
// talking to our proxy (docs/protocol.md §2); without one it is the proxy talking to a DC (§5),
// which is how tests reach the stand-in DC directly.
import { type Cipheriv, randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { parseSecretParam } from '../../proxy/src/config/links.js';
import {
  createClientHeader,
  ctrCipher,
  dcHeaderFromInit,
  HEADER_LEN,
  isAcceptableRandomHeader,
  type RandomSource,
  type Transport,
  transportTag,
} from '../../proxy/src/protocol/obfuscated2.js';
import { encodePacket, type Packet, PacketReader } from '../../proxy/src/protocol/transports.js';
import { openTestSocket, PacketInbox } from './client-socket.js';

const LABEL = 'obfs2 test client';

export interface Obfs2ClientOptions {
  port: number;
  /**
   * A 16-byte key, a link's secret parameter (plain hex or `dd` + hex), or null for a secretless
   * header as the proxy sends it to a DC.
   */
  secret: Buffer | string | null;
  /** Default: padded for a `dd` secret, intermediate otherwise. */
  transport?: Transport;
  /** DC index written into the header. Default 2. */
  dc?: number;
  random?: RandomSource;
  /** Default timeout of connect() and receive(), in ms. Default 5000. */
  timeoutMs?: number;
  /** Bytes sent before the header: a PROXY protocol header from a load balancer. */
  preamble?: Buffer;
  /** Source address, e.g. 127.0.0.2, to look like another client machine. */
  localAddress?: string;
}

interface Keys {
  readonly wire: Buffer;
  readonly encryptor: Cipheriv;
  readonly decryptor: Cipheriv;
}

/** The header a proxy writes towards a DC, with the DC index filled in. */
function secretlessHeader(random: RandomSource, transport: Transport, dc: number): Keys {
  for (let draw = 0; draw < 1000; draw++) {
    const init = Buffer.from(random(HEADER_LEN));
    if (!isAcceptableRandomHeader(init)) continue;
    transportTag(transport).copy(init, 56);
    init.writeInt16LE(dc, 60);
    const h = dcHeaderFromInit(init);
    return { wire: h.wire, encryptor: h.encryptor, decryptor: ctrCipher(h.decrypt) };
  }
  throw new Error('random source never produced an acceptable header');
}

function resolveSecret(secret: Buffer | string): { key: Buffer; dd: boolean } {
  if (Buffer.isBuffer(secret)) return { key: secret, dd: false };
  const parsed = parseSecretParam(secret);
  if (parsed.kind === 'ee') throw new Error('obfs2 test client: fake TLS (ee) secrets are not supported');
  return { key: parsed.key, dd: parsed.kind === 'dd' };
}

export class Obfs2Client {
  /** The socket itself, for tests that write garbage, half-close or reset. */
  readonly rawSocket: Socket;
  readonly transport: Transport;
  /** The 64 header bytes as sent. */
  readonly header: Buffer;
  readonly #keys: Keys;
  readonly #reader: PacketReader;
  readonly #timeoutMs: number;
  readonly #inbox: PacketInbox;

  private constructor(socket: Socket, transport: Transport, keys: Keys, timeoutMs: number) {
    this.rawSocket = socket;
    this.transport = transport;
    this.header = keys.wire;
    this.#keys = keys;
    this.#reader = new PacketReader(transport);
    this.#timeoutMs = timeoutMs;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#inbox = new PacketInbox(socket, LABEL);
  }

  /** Connects and sends the header. */
  static async connect(options: Obfs2ClientOptions): Promise<Obfs2Client> {
    const random = options.random ?? randomBytes;
    const dc = options.dc ?? 2;
    let transport: Transport;
    let keys: Keys;
    if (options.secret === null) {
      transport = options.transport ?? 'intermediate';
      keys = secretlessHeader(random, transport, dc);
    } else {
      const { key, dd } = resolveSecret(options.secret);
      transport = options.transport ?? (dd ? 'padded' : 'intermediate');
      keys = createClientHeader(random, key, transport, dc);
    }
    const timeoutMs = options.timeoutMs ?? 5000;
    const socket = await openTestSocket(options.port, timeoutMs, LABEL, options.localAddress);
    socket.write(options.preamble ? Buffer.concat([options.preamble, keys.wire]) : keys.wire);
    return new Obfs2Client(socket, transport, keys, timeoutMs);
  }

  /** Frames, encrypts and sends one packet (a multiple of 4 bytes). */
  send(payload: Buffer, quickAck = false): void {
    this.sendRaw(Buffer.concat(encodePacket(this.transport, payload, undefined, quickAck)));
  }

  /** Encrypts and sends bytes as they are: for framing a real client would never produce. */
  sendRaw(plain: Buffer): void {
    this.rawSocket.write(this.#keys.encryptor.update(plain));
  }

  /** The next packet from the peer; rejects on timeout, close or bad framing. */
  receive(timeoutMs = this.#timeoutMs): Promise<Packet> {
    return this.#inbox.receive(timeoutMs);
  }

  /** Resolves when the peer (or we) closed the connection; rejects after the timeout. */
  waitForClose(timeoutMs = this.#timeoutMs): Promise<void> {
    return this.#inbox.waitForClose(timeoutMs);
  }

  get closed(): boolean {
    return this.#inbox.isClosed;
  }

  /** Closes our side and waits for the socket to be gone. */
  async close(): Promise<void> {
    this.rawSocket.destroy();
    await this.#inbox.closed;
  }

  #onData(chunk: Buffer): void {
    if (this.#inbox.failed) return;
    try {
      this.#reader.push(this.#keys.decryptor.update(chunk));
      for (let p = this.#reader.next(); p; p = this.#reader.next()) this.#inbox.push(p);
    } catch (err) {
      this.#inbox.fail(err instanceof Error ? err : new Error(String(err)));
      this.rawSocket.destroy();
    }
  }
}
