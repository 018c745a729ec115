// A Telegram DC as seen from behind a stand-in middle proxy: plug `answer` into
// StandinMiddleProxy.start({ answer }) and the packets of RPC_PROXY_REQ are answered the way
// standin-dc.ts answers them on a direct connection:
//   - an unencrypted req_pq / req_pq_multi gets a resPQ that gramjs accepts, so a real client
//     goes on to req_DH_params;
//   - req_DH_params and set_client_DH_params are recorded and left unanswered (no DH here);
//   - every other packet is echoed back, as the stand-in middle proxy does by default.
// A req_DH_params carrying the nonces of a resPQ we sent is proof of a full round trip through
// the proxy and the middle proxy.
import { randomBytes } from 'node:crypto';
import { resPqMessage, TL } from './standin-dc.js';
import type { RecordedRequest } from './standin-middle-proxy.js';

/** An unencrypted key-exchange message found in an RPC_PROXY_REQ. */
export interface KeyExchangeMessage {
  /** The RPC_PROXY_REQ that carried it (flags, ad tag, client address, conn id). */
  readonly request: RecordedRequest;
  readonly constructorId: number;
  /** The client's nonce (bytes 4..20 of the body). */
  readonly nonce: Buffer;
  /** server_nonce (bytes 20..36), for req_DH_params and set_client_DH_params. */
  readonly serverNonce: Buffer | undefined;
}

const KEY_EXCHANGE = new Set<number>([TL.reqPq, TL.reqPqMulti, TL.reqDhParams, TL.setClientDhParams]);
const POLL_MS = 10;

/** auth_key_id 0 || msg_id || length || body: the body's constructor and nonces, if it is one. */
function keyExchangeOf(request: RecordedRequest): KeyExchangeMessage | undefined {
  const p = request.packet;
  if (p.length < 40 || p.readBigUInt64LE(0) !== 0n) return undefined;
  const length = p.readUInt32LE(16);
  if (length < 20 || 20 + length > p.length) return undefined;
  const constructorId = p.readUInt32LE(20);
  if (!KEY_EXCHANGE.has(constructorId)) return undefined;
  const withServerNonce = constructorId === TL.reqDhParams || constructorId === TL.setClientDhParams;
  return {
    request,
    constructorId,
    nonce: Buffer.from(p.subarray(24, 40)),
    serverNonce: withServerNonce && length >= 36 ? Buffer.from(p.subarray(40, 56)) : undefined,
  };
}

export class DcBehindMiddleProxy {
  /** Every key-exchange message received, in order. */
  readonly messages: KeyExchangeMessage[] = [];
  /** Every resPQ sent: the client's nonce and ours. */
  readonly answered: { readonly nonce: Buffer; readonly serverNonce: Buffer }[] = [];

  /** For StandinOptions.answer: the data of the RPC_PROXY_ANS, or undefined for none. */
  readonly answer = (request: RecordedRequest): Buffer | undefined => {
    const message = keyExchangeOf(request);
    if (message === undefined) return request.packet;
    this.messages.push(message);
    if (message.constructorId === TL.reqPq || message.constructorId === TL.reqPqMulti) {
      const serverNonce = randomBytes(16);
      this.answered.push({ nonce: message.nonce, serverNonce });
      return resPqMessage(message.nonce, serverNonce);
    }
    return undefined;
  };

  /**
   * The first message among `messages[since..]` (and those still to come) that matches;
   * rejects after the timeout.
   */
  async waitForMessage(
    predicate: (m: KeyExchangeMessage) => boolean,
    timeoutMs = 5000,
    since = 0,
  ): Promise<KeyExchangeMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(since).find(predicate);
      if (found) return found;
      if (Date.now() >= deadline) {
        throw new Error(`DC behind the middle proxy: no matching message within ${timeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  /** A req_DH_params that carries the nonce pair of a resPQ we sent. */
  waitForDhRequest(timeoutMs = 5000, since = 0): Promise<KeyExchangeMessage> {
    return this.waitForMessage(
      (m) =>
        m.constructorId === TL.reqDhParams &&
        this.answered.some((a) => m.nonce.equals(a.nonce) && m.serverNonce?.equals(a.serverNonce) === true),
      timeoutMs,
      since,
    );
  }
}
