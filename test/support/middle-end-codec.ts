// The middle-end's side of the middle-proxy RPC protocol (docs/protocol.md §6.6-§6.9): what one of
// Telegram's middle proxies writes to us and how it reads what we send. The proxy never runs this
// side; the stand-in middle proxy, the benchmark's echo middle-end and the codec tests do.
import { type Endpoint, ipv4ToHostOrder } from '../../proxy/src/middle/codec/address.js';
import {
  ProxyReqFlag,
  RPC,
  TL_HTTP_QUERY_INFO,
  TL_PROXY_TAG,
} from '../../proxy/src/middle/codec/constants.js';
import { encodePid, type ProcessId, parsePid } from '../../proxy/src/middle/codec/rpc-handshake.js';
import { encodeWithId, messageType } from '../../proxy/src/middle/codec/rpc-messages.js';
import {
  type ConnId,
  ProxyReqHeader,
  type ProxyReqTemplate,
} from '../../proxy/src/middle/codec/rpc-proxy-req.js';
import { ProtocolError } from '../../proxy/src/protocol/errors.js';

// ---- process ids and the handshake (§6.6) ----

export function processId(ip: string, port: number, pid: number, utime: number): ProcessId {
  return { ip: ipv4ToHostOrder(ip), port, pid, utime };
}

/** The 12 ASCII bytes mtprotoproxy and erlang send as both pids; middle-ends accept them. */
export const PLACEHOLDER_PID: ProcessId = parsePid(Buffer.from('IPIPPRPDTIME', 'latin1'), 0);

/** The inverse of ipv4ToHostOrder: 0x959aaf32 -> 149.154.175.50. */
export function hostOrderToIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff].join('.');
}

/** RPC_HANDSHAKE_ERROR: type(4) || error code LE32 || sender pid(12). */
export function encodeHandshakeError(errorCode: number, sender: ProcessId): Buffer {
  const out = Buffer.alloc(20);
  out.writeUInt32LE(RPC.HANDSHAKE_ERROR, 0);
  out.writeInt32LE(errorCode, 4);
  encodePid(sender, out, 8);
  return out;
}

// ---- what a middle-end sends (§6.9) ----

const PROXY_ANS_HEADER = 16;
const CONN_MESSAGE_LEN = 12; // type + 8-byte id

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
  return encodeWithId(RPC.SIMPLE_ACK, connId, token);
}

export function encodeCloseExt(connId: ConnId): Buffer {
  return encodeWithId(RPC.CLOSE_EXT, connId);
}

// ---- what a middle-end reads from the proxy (§6.8, §6.9) ----

/** RPC_PROXY_REQ as a middle-end reads it. */
export interface ProxyReq {
  readonly flags: number;
  readonly connId: ConnId;
  readonly client: Endpoint;
  readonly proxy: Endpoint;
  /** The extra section, when flags 0x4 or 0x8 announce one. */
  readonly extra: Buffer | undefined;
  readonly adTag: Buffer | undefined;
  /** The client's MTProto packet. */
  readonly packet: Buffer;
}

export type ProxyMessage =
  | { readonly kind: 'request'; readonly request: ProxyReq }
  | { readonly kind: 'close-conn'; readonly connId: ConnId }
  | { readonly kind: 'ping'; readonly pingId: bigint }
  | { readonly kind: 'pong'; readonly pingId: bigint }
  | { readonly kind: 'unknown'; readonly type: number; readonly length: number };

/** What a middle-end reads from the proxy after the handshake (strict: a bad request throws). */
export function parseProxyMessage(payload: Buffer): ProxyMessage {
  const type = messageType(payload, 'proxy');
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

/** type || flags || out_conn_id(8) || client ip(16) port LE32 || proxy ip(16) port LE32 */
const PROXY_REQ_FIXED_LEN = 56;

export function parseProxyReq(payload: Buffer): ProxyReq {
  if (payload.length < PROXY_REQ_FIXED_LEN || payload.readUInt32LE(0) !== RPC.PROXY_REQ) {
    throw new ProtocolError('ERR_MP_PROXY_REQ', 'not an RPC_PROXY_REQ');
  }
  const flags = payload.readUInt32LE(4);
  let at = PROXY_REQ_FIXED_LEN;
  let extra: Buffer | undefined;
  if (flags & (ProxyReqFlag.HTTP_QUERY_INFO | ProxyReqFlag.HAS_AD_TAG)) {
    const size = payload.length >= at + 4 ? payload.readUInt32LE(at) : -1;
    if (size < 0 || size % 4 !== 0 || at + 4 + size > payload.length) {
      throw new ProtocolError('ERR_MP_PROXY_REQ', 'RPC_PROXY_REQ extra section does not fit');
    }
    extra = payload.subarray(at + 4, at + 4 + size);
    at += 4 + size;
  }
  const adTag = extra && parseExtra(extra);
  if (flags & ProxyReqFlag.HAS_AD_TAG && adTag === undefined) {
    throw new ProtocolError('ERR_MP_PROXY_REQ', 'RPC_PROXY_REQ announces an ad tag and carries none');
  }
  const packet = payload.subarray(at);
  if (packet.length % 4 !== 0) {
    throw new ProtocolError('ERR_MP_PROXY_REQ', `client packet of ${packet.length} bytes`);
  }
  return {
    flags,
    connId: payload.readBigUInt64LE(8),
    client: readEndpoint(payload, 16),
    proxy: readEndpoint(payload, 36),
    extra,
    adTag,
    packet,
  };
}

function parseExtra(extra: Buffer): Buffer | undefined {
  let adTag: Buffer | undefined;
  let at = 0;
  while (at < extra.length) {
    if (at + 4 > extra.length) throw new ProtocolError('ERR_MP_PROXY_REQ', 'RPC_PROXY_REQ extra truncated');
    const tl = extra.readUInt32LE(at);
    at += 4;
    if (tl === TL_PROXY_TAG) {
      const tag = parseTlString(extra, at);
      adTag = tag.value;
      at = tag.end;
    } else if (tl === TL_HTTP_QUERY_INFO) {
      for (let i = 0; i < 3; i++) at = parseTlString(extra, at).end; // Origin, Referer, User-Agent
    } else {
      throw new ProtocolError('ERR_MP_PROXY_REQ', `unknown constructor 0x${tl.toString(16)} in extra`);
    }
  }
  return adTag;
}

const TL_LONG_MARKER = 0xfe;
const TL_SHORT_MAX = 253;

/** A TL string starting at `offset` and the offset just after its padding (§6.8). */
export function parseTlString(b: Buffer, offset: number): { value: Buffer; end: number } {
  if (offset >= b.length) throw new ProtocolError('ERR_MP_TL_STRING', 'TL string truncated');
  let length = b[offset]!;
  let prefix = 1;
  if (length === TL_LONG_MARKER) {
    if (offset + 4 > b.length) throw new ProtocolError('ERR_MP_TL_STRING', 'TL string truncated');
    length = b.readUIntLE(offset + 1, 3);
    prefix = 4;
  } else if (length > TL_SHORT_MAX) {
    throw new ProtocolError('ERR_MP_TL_STRING', `TL string length byte ${length}`);
  }
  const end = offset + ((prefix + length + 3) & ~3);
  if (end > b.length) throw new ProtocolError('ERR_MP_TL_STRING', 'TL string truncated');
  return { value: b.subarray(offset + prefix, offset + prefix + length), end };
}

function readEndpoint(b: Buffer, offset: number): Endpoint {
  return { ip: formatIpv6Field(b.subarray(offset, offset + 16)), port: b.readUInt32LE(offset + 16) };
}

const MAPPED_PREFIX = Buffer.from('00000000000000000000ffff', 'hex');

/** Text form of 16 octets: IPv4-mapped as dotted quad, otherwise RFC 5952 (longest zero run as `::`). */
function formatIpv6Field(octets: Buffer): string {
  if (octets.subarray(0, 12).equals(MAPPED_PREFIX)) return [...octets.subarray(12)].join('.');
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(octets.readUInt16BE(i));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLength))}`;
}

// ---- the proxy's side in one buffer ----

/** Header and packet of an RPC_PROXY_REQ in one new buffer (the relay frames the two parts instead). */
export function encodeProxyReq(t: ProxyReqTemplate, packet: Buffer, quickAck: boolean): Buffer {
  return Buffer.concat([new ProxyReqHeader(t).forPacket(packet, quickAck), packet]);
}
