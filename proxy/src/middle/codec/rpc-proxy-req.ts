// RPC_PROXY_REQ (§6.8): one per client packet, proxy -> middle-end.
//   type || flags || out_conn_id(8) || client ip(16) port LE32 || proxy ip(16) port LE32
//   || [extra_size LE32 || extra]  (only with flag 0x4 or 0x8) || the client's packet
// Everything before the packet is fixed for a client connection except the flags, so the header
// is built once per client and only its flags word is rewritten per packet.
import { ProtocolError } from '../../protocol/errors.js';
import type { Transport } from '../../protocol/obfuscated2.js';
import { type Endpoint, formatIpv6Field, ipv6Field } from './address.js';
import { ProxyReqFlag, RPC, TL_HTTP_QUERY_INFO, TL_PROXY_TAG } from './constants.js';
import { encodeTlString, parseTlString } from './tl-string.js';

/** Identifies one client connection on a middle-end connection: LE64 on the wire. */
export type ConnId = bigint;

const AD_TAG_LEN = 16;
const FIXED_LEN = 56;

export interface ProxyReqTemplate {
  readonly connId: ConnId;
  /** Transport of the client (decides the ABRIDGED / INTERMEDIATE / PAD flags). */
  readonly transport: Transport;
  /** The client's TCP peer address. */
  readonly client: Endpoint;
  /**
   * Our address. The official proxy sends the local address of the client's connection (the
   * port clients dialled), NAT-translated; mtprotoproxy the middle-end connection's local port
   * with the external IP. The middle-end accepts either.
   */
  readonly proxy: Endpoint;
  /** 16-byte advertising tag. Without one there is no flag 0x8 and no extra section at all. */
  readonly adTag?: Buffer | undefined;
  /**
   * Send flag 0x08000000 for padded-intermediate clients, as mtprotoproxy, erlang and telemt do.
   * The official proxy does not (default).
   */
  readonly forwardPadFlag?: boolean;
}

function transportFlags(transport: Transport, forwardPadFlag: boolean): number {
  switch (transport) {
    case 'abridged':
      return ProxyReqFlag.ABRIDGED;
    case 'intermediate':
      return ProxyReqFlag.INTERMEDIATE;
    case 'padded':
      return ProxyReqFlag.INTERMEDIATE | (forwardPadFlag ? ProxyReqFlag.PAD : 0);
  }
}

/** auth_key_id zero: an unencrypted handshake message (req_pq and friends). */
function isUnencrypted(packet: Buffer): boolean {
  return packet.length >= 8 && packet.readUInt32LE(0) === 0 && packet.readUInt32LE(4) === 0;
}

function writeEndpoint(out: Buffer, offset: number, e: Endpoint): void {
  ipv6Field(e.ip).copy(out, offset);
  out.writeUInt32LE(e.port, offset + 16);
}

/** The RPC_PROXY_REQ header of one client connection. */
export class ProxyReqHeader {
  private readonly header: Buffer;
  private readonly baseFlags: number;

  constructor(t: ProxyReqTemplate) {
    if (t.adTag !== undefined && t.adTag.length !== AD_TAG_LEN) {
      throw new RangeError(`the advertising tag must be 16 bytes, got ${t.adTag.length}`);
    }
    const extra = t.adTag && Buffer.concat([u32(TL_PROXY_TAG), encodeTlString(t.adTag)]);
    this.header = Buffer.alloc(FIXED_LEN + (extra ? 4 + extra.length : 0));
    this.header.writeUInt32LE(RPC.PROXY_REQ, 0);
    this.header.writeBigUInt64LE(t.connId, 8);
    writeEndpoint(this.header, 16, t.client);
    writeEndpoint(this.header, 36, t.proxy);
    if (extra) {
      this.header.writeUInt32LE(extra.length, FIXED_LEN);
      extra.copy(this.header, FIXED_LEN + 4);
    }
    this.baseFlags =
      ProxyReqFlag.MAGIC |
      ProxyReqFlag.EXTMODE2 |
      (extra ? ProxyReqFlag.HAS_AD_TAG : 0) |
      transportFlags(t.transport, t.forwardPadFlag ?? false);
  }

  get length(): number {
    return this.header.length;
  }

  /**
   * The header to send before `packet`. The returned buffer belongs to this object and is
   * rewritten by the next call: frame it (FrameWriter copies it) before asking for another.
   * `dropped`: an earlier packet of this client could not be forwarded (official RPC_F_DROPPED).
   */
  forPacket(packet: Buffer, quickAck: boolean, dropped = false): Buffer {
    const flags =
      this.baseFlags |
      (isUnencrypted(packet) ? ProxyReqFlag.NOT_ENCRYPTED : 0) |
      (dropped ? ProxyReqFlag.DROPPED : 0) |
      (quickAck ? ProxyReqFlag.QUICKACK : 0);
    this.header.writeUInt32LE(flags >>> 0, 4);
    return this.header;
  }
}

function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  return b;
}

/** Header and packet in one new buffer (tests and tools; the relay frames the two parts instead). */
export function encodeProxyReq(t: ProxyReqTemplate, packet: Buffer, quickAck: boolean): Buffer {
  return Buffer.concat([new ProxyReqHeader(t).forPacket(packet, quickAck), packet]);
}

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

function readEndpoint(b: Buffer, offset: number): Endpoint {
  return { ip: formatIpv6Field(b.subarray(offset, offset + 16)), port: b.readUInt32LE(offset + 16) };
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

export function parseProxyReq(payload: Buffer): ProxyReq {
  if (payload.length < FIXED_LEN || payload.readUInt32LE(0) !== RPC.PROXY_REQ) {
    throw new ProtocolError('ERR_MP_PROXY_REQ', 'not an RPC_PROXY_REQ');
  }
  const flags = payload.readUInt32LE(4);
  let at = FIXED_LEN;
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
