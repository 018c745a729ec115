// A stand-in Telegram DC on 127.0.0.1 for integration tests and the benchmark. It speaks the DC
// side of obfuscated2 without a secret (docs/protocol.md §2.2 last paragraph, §5), splits packets
// in the transport named by the client's tag, and then:
//   - answers an unencrypted req_pq / req_pq_multi with a well-formed resPQ that gramjs accepts
//     (so a real client goes on to req_DH_params, which is recorded);
//   - records, but leaves unanswered, req_DH_params and set_client_DH_params (it cannot do DH);
//   - echoes every other packet back unchanged.
import { type Cipheriv, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { ProtocolError } from '../../proxy/src/protocol/errors.js';
import { type CtrKey, ctrCipher, HEADER_LEN, type Transport } from '../../proxy/src/protocol/obfuscated2.js';
import { encodePacket, PacketReader } from '../../proxy/src/protocol/transports.js';

/** Constructor ids of the unencrypted key-exchange messages (LE32 values). */
export const TL = {
  reqPq: 0x60469778,
  reqPqMulti: 0xbe7e8ef1,
  resPq: 0x05162463,
  reqDhParams: 0xd712e4be,
  setClientDhParams: 0xf5045f1f,
  vector: 0x1cb5c415,
} as const;

/** pq = 1229739323 * 1402015859, the example of Telegram's documentation; gramjs factorises it. */
const PQ = Buffer.from('17ed48941a08f981', 'hex');
/**
 * Fingerprint of Telegram's production RSA key (signed -3414540481677951611), one of the two keys
 * in gramjs's `crypto/RSA.js`, so gramjs encrypts req_DH_params for it.
 */
export const PRODUCTION_KEY_FINGERPRINT = 0xd09d1d85de64fd85n;

const TAGS = new Map<number, Transport>([
  [0xefefefef, 'abridged'],
  [0xeeeeeeee, 'intermediate'],
  [0xdddddddd, 'padded'],
]);

/** An unencrypted MTProto message the stand-in received: auth_key_id 0 || msg_id || len || body. */
export interface DcMessage {
  readonly connection: number;
  readonly messageId: bigint;
  readonly constructorId: number;
  /** The client's nonce (bytes 4..20 of the body) for the four key-exchange messages. */
  readonly nonce: Buffer | undefined;
  /** server_nonce (bytes 20..36) for req_DH_params and set_client_DH_params. */
  readonly serverNonce: Buffer | undefined;
}

/** A resPQ the stand-in sent. */
export interface ResPqAnswer {
  readonly connection: number;
  readonly nonce: Buffer;
  readonly serverNonce: Buffer;
}

export interface DcConnection {
  readonly id: number;
  readonly transport: Transport;
  /** Signed LE16 at decrypted offset 60: the DC index, or random when the sender left it so. */
  readonly dcField: number;
  /** Frames and sends a packet to this peer as the DC would. */
  send(payload: Buffer): void;
  /** Resets the connection, as a DC going away would. */
  destroy(): void;
}

export interface StandinDcStats {
  /** TCP connections accepted. */
  connections: number;
  /** Connections currently open. */
  open: number;
  /** Connections closed because the header or framing was bad. */
  rejected: number;
  /** Raw bytes received and sent, obfuscated2 header included. */
  bytesIn: number;
  bytesOut: number;
  /** Packets received, and packets echoed back. */
  packets: number;
  echoed: number;
}

export interface StandinDcEvents {
  connection: [DcConnection];
  message: [DcMessage];
  echo: [DcConnection, Buffer];
  reject: [string];
  close: [number];
}

export interface StandinDc {
  readonly port: number;
  readonly events: EventEmitter<StandinDcEvents>;
  readonly stats: StandinDcStats;
  /** Every unencrypted message received, in order. */
  readonly messages: readonly DcMessage[];
  /** Every resPQ sent, in order. */
  readonly answered: readonly ResPqAnswer[];
  /** Connections with a valid header, in order of arrival. */
  readonly connections: readonly DcConnection[];
  /**
   * Resolves with the first message matching `predicate` among `messages[since..]` and those still
   * to come; rejects after the timeout (default 5000 ms).
   */
  waitForMessage(
    predicate: (m: DcMessage) => boolean,
    timeoutMs?: number,
    since?: number,
  ): Promise<DcMessage>;
  /** Resolves once a req_DH_params arrives that carries the nonce pair of a resPQ we sent. */
  waitForDhRequest(timeoutMs?: number, since?: number): Promise<DcMessage>;
  /** Closes the listener and every connection. */
  stop(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 5000;

/** Key schedule of the receiving side of a secretless obfuscated2 header (§2.2, §5). */
function dcSideKeys(header: Buffer): { decrypt: CtrKey; encrypt: CtrKey } {
  const r = Buffer.from(header.subarray(8, 56)).reverse();
  return {
    decrypt: { key: header.subarray(8, 40), iv: header.subarray(40, 56) },
    encrypt: { key: r.subarray(0, 32), iv: r.subarray(32, 48) },
  };
}

function parseMessage(connection: number, payload: Buffer): DcMessage | undefined {
  if (payload.length < 24 || payload.readBigUInt64LE(0) !== 0n) return undefined;
  const length = payload.readUInt32LE(16);
  if (length < 4 || 20 + length > payload.length) return undefined;
  const constructorId = payload.readUInt32LE(20);
  const body = payload.subarray(20, 20 + length);
  const keyExchange =
    constructorId === TL.reqPq ||
    constructorId === TL.reqPqMulti ||
    constructorId === TL.reqDhParams ||
    constructorId === TL.setClientDhParams;
  const withServerNonce = constructorId === TL.reqDhParams || constructorId === TL.setClientDhParams;
  return {
    connection,
    messageId: payload.readBigUInt64LE(8),
    constructorId,
    nonce: keyExchange && body.length >= 20 ? Buffer.from(body.subarray(4, 20)) : undefined,
    serverNonce: withServerNonce && body.length >= 36 ? Buffer.from(body.subarray(20, 36)) : undefined,
  };
}

let lastMessageId = 0n;

/** Server message ids: unix time in the high half, and ≡ 1 mod 4 for responses. */
function serverMessageId(): bigint {
  let id = (BigInt(Math.floor(Date.now() / 1000)) << 32n) | 1n;
  if (id <= lastMessageId) id = lastMessageId + 4n;
  lastMessageId = id;
  return id;
}

/** resPQ wrapped in an unencrypted message. */
export function resPqMessage(nonce: Buffer, serverNonce: Buffer): Buffer {
  const body = Buffer.alloc(4 + 16 + 16 + 12 + 8 + 8);
  let at = body.writeUInt32LE(TL.resPq, 0);
  at += nonce.copy(body, at);
  at += serverNonce.copy(body, at);
  // TL bytes: one length byte, the bytes, zero padding to a multiple of 4.
  at = body.writeUInt8(PQ.length, at);
  at += PQ.copy(body, at);
  at += 3;
  at = body.writeUInt32LE(TL.vector, at);
  at = body.writeUInt32LE(1, at);
  body.writeBigUInt64LE(PRODUCTION_KEY_FINGERPRINT, at);
  const head = Buffer.alloc(20);
  head.writeBigUInt64LE(serverMessageId(), 8);
  head.writeUInt32LE(body.length, 16);
  return Buffer.concat([head, body]);
}

/** An unencrypted req_pq_multi as a client sends it first (for raw clients in tests). */
export function reqPqMultiMessage(
  nonce: Buffer,
  messageId = BigInt(Math.floor(Date.now() / 1000)) << 32n,
): Buffer {
  const message = Buffer.alloc(20 + 20);
  message.writeBigUInt64LE(messageId, 8);
  message.writeUInt32LE(20, 16);
  message.writeUInt32LE(TL.reqPqMulti, 20);
  nonce.copy(message, 24);
  return message;
}

export interface ResPq {
  readonly nonce: Buffer;
  readonly serverNonce: Buffer;
  readonly pq: Buffer;
  readonly fingerprints: readonly bigint[];
}

/** Reads a resPQ message back (for raw clients in tests); undefined if it is not one. */
export function parseResPq(message: Buffer): ResPq | undefined {
  if (message.length < 20 + 4 + 32 + 12 + 8 || message.readBigUInt64LE(0) !== 0n) return undefined;
  if (message.readUInt32LE(20) !== TL.resPq) return undefined;
  const pqLength = message[56]!;
  const vectorAt = 56 + ((1 + pqLength + 3) & ~3);
  if (message.length < vectorAt + 8 || message.readUInt32LE(vectorAt) !== TL.vector) return undefined;
  const count = message.readUInt32LE(vectorAt + 4);
  if (message.length < vectorAt + 8 + count * 8) return undefined;
  const fingerprints: bigint[] = [];
  for (let i = 0; i < count; i++) fingerprints.push(message.readBigUInt64LE(vectorAt + 8 + i * 8));
  return {
    nonce: message.subarray(24, 40),
    serverNonce: message.subarray(40, 56),
    pq: message.subarray(57, 57 + pqLength),
    fingerprints,
  };
}

function withTimeout<T>(
  what: string,
  timeoutMs: number,
  start: (done: (v: T) => void) => () => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let cleanup: () => void = () => {};
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`stand-in DC: timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    cleanup = start((v) => {
      clearTimeout(timer);
      cleanup();
      resolve(v);
    });
  });
}

export async function startStandinDc(): Promise<StandinDc> {
  const events = new EventEmitter<StandinDcEvents>();
  const stats: StandinDcStats = {
    connections: 0,
    open: 0,
    rejected: 0,
    bytesIn: 0,
    bytesOut: 0,
    packets: 0,
    echoed: 0,
  };
  const messages: DcMessage[] = [];
  const answered: ResPqAnswer[] = [];
  const connections: DcConnection[] = [];
  const sockets = new Set<Socket>();

  function accept(socket: Socket): void {
    const id = ++stats.connections;
    stats.open++;
    sockets.add(socket);
    socket.setNoDelay(true);
    let header: Buffer = Buffer.alloc(0);
    let session: Session | undefined;

    socket.on('data', (chunk: Buffer) => {
      stats.bytesIn += chunk.length;
      try {
        if (session) {
          session.receive(chunk);
          return;
        }
        header = Buffer.concat([header, chunk]);
        if (header.length < HEADER_LEN) return;
        session = new Session(id, socket, header.subarray(0, HEADER_LEN));
        session.receive(header.subarray(HEADER_LEN));
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        stats.rejected++;
        events.emit('reject', `connection ${id}: ${err.message}`);
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      stats.open--;
      sockets.delete(socket);
      events.emit('close', id);
    });
  }

  class Session implements DcConnection {
    readonly transport: Transport;
    readonly dcField: number;
    readonly #socket: Socket;
    readonly #decryptor: Cipheriv;
    readonly #encryptor: Cipheriv;
    readonly #reader: PacketReader;
    #paused = false;

    constructor(
      readonly id: number,
      socket: Socket,
      header: Buffer,
    ) {
      this.#socket = socket;
      const keys = dcSideKeys(header);
      this.#decryptor = ctrCipher(keys.decrypt);
      this.#encryptor = ctrCipher(keys.encrypt);
      const plain = this.#decryptor.update(header);
      const transport = TAGS.get(plain.readUInt32LE(56));
      if (transport === undefined) {
        throw new ProtocolError('ERR_STANDIN_TAG', `unknown protocol tag ${plain.toString('hex', 56, 60)}`);
      }
      this.transport = transport;
      this.dcField = plain.readInt16LE(60);
      this.#reader = new PacketReader(transport);
      connections.push(this);
      events.emit('connection', this);
    }

    receive(chunk: Buffer): void {
      if (chunk.length === 0) return;
      this.#reader.push(this.#decryptor.update(chunk));
      for (let packet = this.#reader.next(); packet; packet = this.#reader.next()) {
        stats.packets++;
        this.#handle(packet.payload);
      }
    }

    #handle(payload: Buffer): void {
      const message = parseMessage(this.id, payload);
      if (message) {
        messages.push(message);
        events.emit('message', message);
        const id = message.constructorId;
        if ((id === TL.reqPq || id === TL.reqPqMulti) && message.nonce) {
          const serverNonce = randomBytes(16);
          answered.push({ connection: this.id, nonce: message.nonce, serverNonce });
          this.send(resPqMessage(message.nonce, serverNonce));
          return;
        }
        if (id === TL.reqDhParams || id === TL.setClientDhParams) return;
      }
      stats.echoed++;
      events.emit('echo', this, payload);
      this.send(payload);
    }

    send(payload: Buffer): void {
      const socket = this.#socket;
      if (socket.destroyed) return;
      socket.cork();
      let flushed = true;
      for (const piece of encodePacket(this.transport, payload)) {
        const bytes = this.#encryptor.update(piece);
        stats.bytesOut += bytes.length;
        flushed = socket.write(bytes) && flushed;
      }
      socket.uncork();
      // Echoing must not outrun a slow reader: stop reading until the peer catches up.
      if (!flushed && !this.#paused) {
        this.#paused = true;
        socket.pause();
        socket.once('drain', () => {
          this.#paused = false;
          socket.resume();
        });
      }
    }

    destroy(): void {
      this.#socket.destroy();
    }
  }

  const server: Server = createServer(accept);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('stand-in DC: no TCP address');

  function waitForMessage(predicate: (m: DcMessage) => boolean, timeoutMs = DEFAULT_TIMEOUT_MS, since = 0) {
    const seen = messages.slice(since).find(predicate);
    if (seen) return Promise.resolve(seen);
    return withTimeout<DcMessage>('a matching message', timeoutMs, (done) => {
      const listener = (m: DcMessage) => {
        if (predicate(m)) done(m);
      };
      events.on('message', listener);
      return () => events.off('message', listener);
    });
  }

  return {
    port: address.port,
    events,
    stats,
    messages,
    answered,
    connections,
    waitForMessage,
    waitForDhRequest: (timeoutMs = DEFAULT_TIMEOUT_MS, since = 0) =>
      waitForMessage(
        (m) =>
          m.constructorId === TL.reqDhParams &&
          answered.some(
            (a) => m.nonce?.equals(a.nonce) === true && m.serverNonce?.equals(a.serverNonce) === true,
          ),
        timeoutMs,
        since,
      ),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
