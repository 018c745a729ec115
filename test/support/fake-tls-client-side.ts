// What a Telegram app does with fake TLS besides writing its ClientHello (docs/protocol.md §4.1,
// §4.7, §4.8): split the hello into several records, as DPI-evasion tools in front of it do; check
// the proxy's answer as tdlib does; and keep its own records small. The proxy never does any of
// this; the stand-in clients of the tests and the benchmark do. The hello itself stays in
// proxy/src/fake-tls/client.ts, because the site prober sends it too.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { RECORD_HEADER_LEN } from '../../proxy/src/fake-tls/records.js';
import { ProtocolError } from '../../proxy/src/protocol/errors.js';

/** tdlib's limit for the records it writes after the handshake (MAX_TLS_PACKET_LENGTH). */
export const CLIENT_MAX_RECORD_PAYLOAD = 2878;

/**
 * Splits a one-record hello into several handshake records with the given payload sizes (the
 * last record takes what is left).
 */
export function splitHelloRecords(hello: Buffer, payloadSizes: readonly number[]): Buffer {
  const payload = hello.subarray(RECORD_HEADER_LEN);
  const parts: Buffer[] = [];
  let from = 0;
  for (let i = 0; from < payload.length; i++) {
    const size = i < payloadSizes.length ? Math.max(1, payloadSizes[i]!) : payload.length - from;
    const piece = payload.subarray(from, Math.min(payload.length, from + size));
    const head = Buffer.from(hello.subarray(0, RECORD_HEADER_LEN));
    head.writeUInt16BE(piece.length, 3);
    parts.push(head, piece);
    from += piece.length;
  }
  return Buffer.concat(parts);
}

export type ServerHelloCheck =
  | { readonly kind: 'need-more' }
  /** The answer is authentic; `rest` is what followed it (the first application-data records). */
  | { readonly kind: 'ok'; readonly consumed: number; readonly rest: Buffer };

const ANSWER_HEAD = Buffer.from([0x16, 0x03, 0x03]);
const ANSWER_MIDDLE = Buffer.from([0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x17, 0x03, 0x03]);
/** Where the server random sits in the answer: record header 5, handshake header 4, version 2. */
const RANDOM_POS = 11;
const RANDOM_LEN = 32;

/**
 * tdlib's check of the proxy's answer (TlsInit::wait_hello_response): `16 03 03` + a record, then
 * literally `14 03 03 00 01 01 17 03 03` + one more record, and a server random equal to
 * HMAC-SHA256(secret, clientRandom || those bytes with the random zeroed). Throws ProtocolError
 * when the answer is not one.
 */
export function verifyServerHello(received: Buffer, clientRandom: Buffer, secret: Buffer): ServerHelloCheck {
  let end = 0;
  for (const prefix of [ANSWER_HEAD, ANSWER_MIDDLE]) {
    if (received.length < end + prefix.length + 2) return { kind: 'need-more' };
    if (!received.subarray(end, end + prefix.length).equals(prefix)) {
      throw new ProtocolError('ERR_TLS_SERVER_HELLO', 'the answer to the hello does not start like one');
    }
    end += prefix.length + 2 + received.readUInt16BE(end + prefix.length);
    if (received.length < end) return { kind: 'need-more' };
  }
  const answer = Buffer.from(received.subarray(0, end));
  if (answer.length < RANDOM_POS + RANDOM_LEN) {
    throw new ProtocolError('ERR_TLS_SERVER_HELLO', 'the ServerHello is too short');
  }
  const serverRandom = Buffer.from(answer.subarray(RANDOM_POS, RANDOM_POS + RANDOM_LEN));
  answer.fill(0, RANDOM_POS, RANDOM_POS + RANDOM_LEN);
  const expected = createHmac('sha256', secret).update(clientRandom).update(answer).digest();
  if (!timingSafeEqual(expected, serverRandom)) {
    throw new ProtocolError(
      'ERR_TLS_SERVER_HELLO',
      'the server random is not our MAC: wrong secret or proxy',
    );
  }
  return { kind: 'ok', consumed: end, rest: received.subarray(end) };
}
