// Everything after the handshake besides RPC_PROXY_REQ (§6.9): what the middle-end sends the
// proxy, what the proxy sends back, and the proxy's side read from the middle-end's point of view
// (used by the test stand-in).
import { ProtocolError } from '../../protocol/errors.js';
import { RPC } from './constants.js';
import { type ConnId, type ProxyReq, parseProxyReq } from './rpc-proxy-req.js';

export type MiddleEndMessage =
  /** RPC_PROXY_ANS: `data` goes to client `connId` in its transport. Flags: +8 flush, +16 small error. */
  | { readonly kind: 'answer'; readonly flags: number; readonly connId: ConnId; readonly data: Buffer }
  /** RPC_SIMPLE_ACK: `token` (4 bytes as on the wire) is the quick ack for client `connId`. */
  | { readonly kind: 'simple-ack'; readonly connId: ConnId; readonly token: Buffer }
  /** RPC_CLOSE_EXT: the middle-end dropped client `connId`; close it. */
  | { readonly kind: 'close-ext'; readonly connId: ConnId }
  /** RPC_PING: answer with `encodePong(pingId)`. */
  | { readonly kind: 'ping'; readonly pingId: bigint }
  | { readonly kind: 'pong'; readonly pingId: bigint }
  /** Any other type, or a known type of the wrong size: the official proxy ignores both. */
  | { readonly kind: 'unknown'; readonly type: number; readonly length: number };

const PROXY_ANS_HEADER = 16;
const SIMPLE_ACK_LEN = 16;
const CONN_MESSAGE_LEN = 12; // type + 8-byte id: CLOSE_EXT, CLOSE_CONN, PING, PONG

function typeOf(payload: Buffer, direction: string): number {
  if (payload.length < 4)
    throw new ProtocolError('ERR_MP_MESSAGE', `${direction} message shorter than 4 bytes`);
  return payload.readUInt32LE(0);
}

function unknown(type: number, payload: Buffer): MiddleEndMessage {
  return { kind: 'unknown', type, length: payload.length };
}

export function parseMiddleEndMessage(payload: Buffer): MiddleEndMessage {
  const type = typeOf(payload, 'middle-end');
  switch (type) {
    case RPC.PROXY_ANS:
      if (payload.length < PROXY_ANS_HEADER) return unknown(type, payload);
      return {
        kind: 'answer',
        flags: payload.readUInt32LE(4),
        connId: payload.readBigUInt64LE(8),
        data: payload.subarray(PROXY_ANS_HEADER),
      };
    case RPC.SIMPLE_ACK:
      if (payload.length !== SIMPLE_ACK_LEN) return unknown(type, payload);
      return { kind: 'simple-ack', connId: payload.readBigUInt64LE(4), token: payload.subarray(12, 16) };
    case RPC.CLOSE_EXT:
      if (payload.length !== CONN_MESSAGE_LEN) return unknown(type, payload);
      return { kind: 'close-ext', connId: payload.readBigUInt64LE(4) };
    case RPC.PING:
    case RPC.PONG:
      if (payload.length !== CONN_MESSAGE_LEN) return unknown(type, payload);
      return { kind: type === RPC.PING ? 'ping' : 'pong', pingId: payload.readBigUInt64LE(4) };
    default:
      return unknown(type, payload);
  }
}

function withId(type: number, id: bigint, tail?: Buffer): Buffer {
  const out = Buffer.alloc(CONN_MESSAGE_LEN + (tail?.length ?? 0));
  out.writeUInt32LE(type, 0);
  out.writeBigUInt64LE(BigInt.asUintN(64, id), 4);
  tail?.copy(out, CONN_MESSAGE_LEN);
  return out;
}

/** The 16 bytes before the data of an RPC_PROXY_ANS; frame them together with the data. */
export function encodeProxyAnsHeader(flags: number, connId: ConnId): Buffer {
  const out = Buffer.alloc(PROXY_ANS_HEADER);
  out.writeUInt32LE(RPC.PROXY_ANS, 0);
  out.writeUInt32LE(flags >>> 0, 4);
  out.writeBigUInt64LE(connId, 8);
  return out;
}

export function encodeProxyAns(flags: number, connId: ConnId, data: Buffer): Buffer {
  return Buffer.concat([encodeProxyAnsHeader(flags, connId), data]);
}

export function encodeSimpleAck(connId: ConnId, token: Buffer): Buffer {
  if (token.length !== 4) throw new RangeError('a quick-ack token is 4 bytes');
  return withId(RPC.SIMPLE_ACK, connId, token);
}

export function encodeCloseExt(connId: ConnId): Buffer {
  return withId(RPC.CLOSE_EXT, connId);
}

/** Proxy -> middle-end: client `connId` has gone. */
export function encodeCloseConn(connId: ConnId): Buffer {
  return withId(RPC.CLOSE_CONN, connId);
}

export function encodePing(pingId: bigint): Buffer {
  return withId(RPC.PING, pingId);
}

export function encodePong(pingId: bigint): Buffer {
  return withId(RPC.PONG, pingId);
}

export type ProxyMessage =
  | { readonly kind: 'request'; readonly request: ProxyReq }
  | { readonly kind: 'close-conn'; readonly connId: ConnId }
  | { readonly kind: 'ping'; readonly pingId: bigint }
  | { readonly kind: 'pong'; readonly pingId: bigint }
  | { readonly kind: 'unknown'; readonly type: number; readonly length: number };

/** What a middle-end reads from the proxy after the handshake (strict: a bad request throws). */
export function parseProxyMessage(payload: Buffer): ProxyMessage {
  const type = typeOf(payload, 'proxy');
  switch (type) {
    case RPC.PROXY_REQ:
      return { kind: 'request', request: parseProxyReq(payload) };
    case RPC.CLOSE_CONN:
    case RPC.PING:
    case RPC.PONG: {
      if (payload.length !== CONN_MESSAGE_LEN) {
        throw new ProtocolError(
          'ERR_MP_MESSAGE',
          `message 0x${type.toString(16)} of ${payload.length} bytes`,
        );
      }
      const id = payload.readBigUInt64LE(4);
      if (type === RPC.CLOSE_CONN) return { kind: 'close-conn', connId: id };
      return { kind: type === RPC.PING ? 'ping' : 'pong', pingId: id };
    }
    default:
      return { kind: 'unknown', type, length: payload.length };
  }
}
