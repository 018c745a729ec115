// Everything after the handshake besides RPC_PROXY_REQ (§6.9): what the middle-end sends the
// proxy and what the proxy sends back. The middle-end's own side is in test/support.
import { ProtocolError } from '../../protocol/errors.js';
import { RPC } from './constants.js';
import type { ConnId } from './rpc-proxy-req.js';

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

/** The type word of a message; `direction` names the sender in the error. */
export function messageType(payload: Buffer, direction: string): number {
  if (payload.length < 4)
    throw new ProtocolError('ERR_MP_MESSAGE', `${direction} message shorter than 4 bytes`);
  return payload.readUInt32LE(0);
}

function unknown(type: number, payload: Buffer): MiddleEndMessage {
  return { kind: 'unknown', type, length: payload.length };
}

export function parseMiddleEndMessage(payload: Buffer): MiddleEndMessage {
  const type = messageType(payload, 'middle-end');
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

/** type LE32 || id LE64 || tail: the messages that name a connection or a ping. */
export function encodeWithId(type: number, id: bigint, tail?: Buffer): Buffer {
  const out = Buffer.alloc(CONN_MESSAGE_LEN + (tail?.length ?? 0));
  out.writeUInt32LE(type, 0);
  out.writeBigUInt64LE(BigInt.asUintN(64, id), 4);
  tail?.copy(out, CONN_MESSAGE_LEN);
  return out;
}

/** Proxy -> middle-end: client `connId` has gone. */
export function encodeCloseConn(connId: ConnId): Buffer {
  return encodeWithId(RPC.CLOSE_CONN, connId);
}

export function encodePing(pingId: bigint): Buffer {
  return encodeWithId(RPC.PING, pingId);
}

export function encodePong(pingId: bigint): Buffer {
  return encodeWithId(RPC.PONG, pingId);
}
