// The PROXY protocol header (HAProxy, versions 1 and 2) that a load balancer puts in front of the
// client's bytes so that we learn the client's real address. Pure code: bytes in, a header or a
// verdict out; malformed input raises ProtocolError. Spec: haproxy.org proxy-protocol.txt.
import { isIP } from 'node:net';
import { ProtocolError } from './errors.js';

export type ProxyProtocolMode = 'v1' | 'v2' | 'auto';

export interface ProxyAddress {
  readonly address: string;
  readonly port: number;
}

export type ProxyHeaderResult =
  /** Call again once more bytes have arrived (the header is not complete yet). */
  | { readonly kind: 'need-more' }
  /** `auto` only: the connection does not start with a header; nothing was consumed. */
  | { readonly kind: 'none' }
  | {
      readonly kind: 'header';
      readonly version: 1 | 2;
      /**
       * The client and the address it connected to; undefined for a LOCAL command (the balancer's
       * own health check), an UNKNOWN v1 header or an address family we do not relay (UNIX, UDP):
       * use the socket's own addresses then.
       */
      readonly source: ProxyAddress | undefined;
      readonly destination: ProxyAddress | undefined;
      /** Header bytes to skip; the client's own bytes start here. */
      readonly consumed: number;
    };

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The longest v1 line, CRLF included (haproxy doc/proxy-protocol.txt, section 2.1). */
const V1_MAX_LENGTH = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_HEADER_LEN = 16;
/**
 * Largest v2 address + TLV block we accept. The format allows 65535, but balancers send a few dozen
 * bytes of TLVs; refusing more keeps a connection's handshake buffer small.
 */
export const V2_MAX_PAYLOAD = 2048;
/** The most bytes parseProxyHeader ever needs to decide. */
export const MAX_PROXY_HEADER = V2_HEADER_LEN + V2_MAX_PAYLOAD;

const NEED_MORE: ProxyHeaderResult = { kind: 'need-more' };
const NONE: ProxyHeaderResult = { kind: 'none' };

/** True while `received` agrees with `prefix` over their common length. */
function startsLike(received: Buffer, prefix: Buffer): boolean {
  const n = Math.min(received.length, prefix.length);
  return received.subarray(0, n).equals(prefix.subarray(0, n));
}

/**
 * Reads a PROXY header at the start of `received` (everything the connection sent so far). In
 * `v1` or `v2` mode the header is required; in `auto` mode either version, or none, is accepted.
 */
export function parseProxyHeader(received: Buffer, mode: ProxyProtocolMode): ProxyHeaderResult {
  if (received.length === 0) return NEED_MORE;
  const maybeV1 = mode !== 'v2' && startsLike(received, V1_PREFIX);
  const maybeV2 = mode !== 'v1' && startsLike(received, V2_SIGNATURE);
  if (maybeV1) return received.length < V1_PREFIX.length ? NEED_MORE : parseV1(received);
  if (maybeV2) return received.length < V2_SIGNATURE.length ? NEED_MORE : parseV2(received);
  if (mode === 'auto') return NONE;
  throw new ProtocolError('ERR_PROXY_HEADER_MISSING', `expected a PROXY protocol ${mode} header`);
}

const V1_PORT = /^(?:0|[1-9][0-9]{0,4})$/;

function parseV1(received: Buffer): ProxyHeaderResult {
  const limit = Math.min(received.length, V1_MAX_LENGTH);
  let lf = -1;
  for (let i = V1_PREFIX.length; i < limit; i++) {
    if (received[i] === 0x0a) {
      lf = i;
      break;
    }
  }
  if (lf < 0) {
    if (received.length >= V1_MAX_LENGTH) {
      throw new ProtocolError('ERR_PROXY_V1_LENGTH', 'PROXY v1 line longer than 107 bytes');
    }
    return NEED_MORE;
  }
  if (received[lf - 1] !== 0x0d)
    throw new ProtocolError('ERR_PROXY_V1_CRLF', 'PROXY v1 line does not end in CRLF');
  const line = received.toString('latin1', V1_PREFIX.length, lf - 1);
  const consumed = lf + 1;
  const fields = line.split(' ');
  const family = fields[0];
  if (family === 'UNKNOWN')
    return { kind: 'header', version: 1, source: undefined, destination: undefined, consumed };
  if ((family !== 'TCP4' && family !== 'TCP6') || fields.length !== 5) {
    throw new ProtocolError('ERR_PROXY_V1_FIELDS', 'PROXY v1 line is not "TCP4|TCP6 src dst sport dport"');
  }
  const want = family === 'TCP4' ? 4 : 6;
  const [, src, dst, sport, dport] = fields as [string, string, string, string, string];
  if (isIP(src) !== want || isIP(dst) !== want) {
    throw new ProtocolError('ERR_PROXY_V1_ADDRESS', `PROXY v1 addresses are not IPv${want}`);
  }
  return {
    kind: 'header',
    version: 1,
    source: { address: src, port: v1Port(sport) },
    destination: { address: dst, port: v1Port(dport) },
    consumed,
  };
}

function v1Port(text: string): number {
  const n = V1_PORT.test(text) ? Number(text) : -1;
  if (n < 0 || n > 65535) throw new ProtocolError('ERR_PROXY_V1_PORT', 'PROXY v1 port is not 0..65535');
  return n;
}

const CMD_LOCAL = 0x0;
const CMD_PROXY = 0x1;
const AF_INET_STREAM = 0x11;
const AF_INET6_STREAM = 0x21;

function parseV2(received: Buffer): ProxyHeaderResult {
  if (received.length < V2_HEADER_LEN) return NEED_MORE;
  const versionCommand = received[12]!;
  if (versionCommand >> 4 !== 2) throw new ProtocolError('ERR_PROXY_V2_VERSION', 'PROXY v2 version is not 2');
  const command = versionCommand & 0x0f;
  if (command !== CMD_LOCAL && command !== CMD_PROXY) {
    throw new ProtocolError('ERR_PROXY_V2_COMMAND', `PROXY v2 command ${command} is unknown`);
  }
  const family = received[13]!;
  const length = received.readUInt16BE(14);
  if (length > V2_MAX_PAYLOAD)
    throw new ProtocolError('ERR_PROXY_V2_LENGTH', `PROXY v2 block of ${length} bytes`);
  const consumed = V2_HEADER_LEN + length;
  if (received.length < consumed) return NEED_MORE;
  const block = received.subarray(V2_HEADER_LEN, consumed);
  const none = { kind: 'header', version: 2, source: undefined, destination: undefined, consumed } as const;
  if (command === CMD_LOCAL) return none;
  if (family === AF_INET_STREAM) {
    if (length < 12)
      throw new ProtocolError('ERR_PROXY_V2_LENGTH', 'PROXY v2 IPv4 block shorter than 12 bytes');
    return {
      ...none,
      source: { address: ipv4(block, 0), port: block.readUInt16BE(8) },
      destination: { address: ipv4(block, 4), port: block.readUInt16BE(10) },
    };
  }
  if (family === AF_INET6_STREAM) {
    if (length < 36)
      throw new ProtocolError('ERR_PROXY_V2_LENGTH', 'PROXY v2 IPv6 block shorter than 36 bytes');
    return {
      ...none,
      source: { address: ipv6(block, 0), port: block.readUInt16BE(32) },
      destination: { address: ipv6(block, 16), port: block.readUInt16BE(34) },
    };
  }
  // UNSPEC, UDP and UNIX sockets: nothing we can use as a TCP client address.
  return none;
}

function ipv4(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/**
 * An IPv6 source as text; an IPv4-mapped one (::ffff:a.b.c.d, what a dual-stack load balancer
 * sends for IPv4 clients) as the plain IPv4 address, so per-address limits and throttles count
 * each IPv4 client on its own instead of all of them as one IPv6 /64.
 */
function ipv6(b: Buffer, at: number): string {
  let mapped = b.readUInt16BE(at + 10) === 0xffff;
  for (let i = 0; i < 10 && mapped; i++) mapped = b[at + i] === 0;
  if (mapped) return ipv4(b, at + 12);
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(at + 2 * i).toString(16));
  return compressIpv6(groups);
}

/** RFC 5952 text: the longest run (2 or more) of zero groups becomes "::". */
function compressIpv6(groups: readonly string[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLen).join(':')}`;
}

/** Builds a header, for tests and tools (a load balancer's side). */
export function formatProxyHeaderV1(source: ProxyAddress, destination: ProxyAddress): Buffer {
  const family = isIP(source.address) === 6 ? 'TCP6' : 'TCP4';
  return Buffer.from(
    `PROXY ${family} ${source.address} ${destination.address} ${source.port} ${destination.port}\r\n`,
    'latin1',
  );
}

/** A v2 PROXY (or LOCAL, without addresses) header with optional raw TLV bytes after the addresses. */
export function formatProxyHeaderV2(
  source: ProxyAddress | undefined,
  destination: ProxyAddress | undefined,
  tlvs: Buffer = Buffer.alloc(0),
): Buffer {
  const head = Buffer.alloc(V2_HEADER_LEN);
  V2_SIGNATURE.copy(head);
  if (source === undefined || destination === undefined) {
    head[12] = 0x20 | CMD_LOCAL;
    head[13] = 0;
    head.writeUInt16BE(tlvs.length, 14);
    return Buffer.concat([head, tlvs]);
  }
  const v6 = isIP(source.address) === 6;
  const addrLen = v6 ? 16 : 4;
  const block = Buffer.alloc(2 * addrLen + 4);
  writeIp(block, 0, source.address, v6);
  writeIp(block, addrLen, destination.address, v6);
  block.writeUInt16BE(source.port, 2 * addrLen);
  block.writeUInt16BE(destination.port, 2 * addrLen + 2);
  head[12] = 0x20 | CMD_PROXY;
  head[13] = v6 ? AF_INET6_STREAM : AF_INET_STREAM;
  head.writeUInt16BE(block.length + tlvs.length, 14);
  return Buffer.concat([head, block, tlvs]);
}

function writeIp(out: Buffer, at: number, address: string, v6: boolean): void {
  if (!v6) {
    address.split('.').forEach((part, i) => {
      out[at + i] = Number(part);
    });
    return;
  }
  const [head = '', tail] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  groups.forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g, 16), at + 2 * i);
  });
}
