// IP addresses as the middle-proxy protocol writes them: 4 octets for IPv4 (reversed in the KDF
// and in process ids, §6.5-6.6), 16 octets for IPv6, IPv4-mapped IPv6 in RPC_PROXY_REQ (§6.8).
// Inputs come from our own sockets and configuration, so a malformed address is a bug: RangeError.
import { isIPv4, isIPv6 } from 'node:net';

/** One end of a TCP connection. `ip` is a literal (IPv4, IPv6, or IPv4-mapped IPv6). */
export interface Endpoint {
  readonly ip: string;
  readonly port: number;
}

const MAPPED_PREFIX = Buffer.from('00000000000000000000ffff', 'hex');

function ipv4Octets(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

function ipv6Octets(ip: string): Buffer {
  const zone = ip.indexOf('%');
  let text = zone >= 0 ? ip.slice(0, zone) : ip;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    // A trailing dotted quad stands for the last two words.
    const quad = ipv4Octets(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}${quad.readUInt16BE(0).toString(16)}:${quad.readUInt16BE(2).toString(16)}`;
  }
  const words = (s: string) => (s === '' ? [] : s.split(':').map((w) => Number.parseInt(w, 16)));
  const [head = '', tail] = text.split('::');
  const headWords = words(head);
  const tailWords = tail === undefined ? [] : words(tail);
  const zeros = new Array<number>(8 - headWords.length - tailWords.length).fill(0);
  const out = Buffer.alloc(16);
  [...headWords, ...zeros, ...tailWords].forEach((w, i) => {
    out.writeUInt16BE(w, 2 * i);
  });
  return out;
}

/**
 * The octets of an address in network order: 4 for IPv4 and for IPv4-mapped IPv6
 * (`::ffff:10.0.0.5`, which is how a dual-stack socket reports an IPv4 peer), 16 for IPv6.
 */
export function ipOctets(ip: string): Buffer {
  if (isIPv4(ip)) return ipv4Octets(ip);
  if (!isIPv6(ip)) throw new RangeError(`not an IP address: ${JSON.stringify(ip)}`);
  const octets = ipv6Octets(ip);
  return octets.subarray(0, 12).equals(MAPPED_PREFIX) ? octets.subarray(12) : octets;
}

/** The 16-byte form of RPC_PROXY_REQ: IPv6 as is, IPv4 as `00×10 ff ff a b c d`. */
export function ipv6Field(ip: string): Buffer {
  const octets = ipOctets(ip);
  return octets.length === 16 ? octets : Buffer.concat([MAPPED_PREFIX, octets]);
}

/** An IPv4 address as the host-order integer the official code keeps (149.154.175.50 -> 0x959aaf32). */
export function ipv4ToHostOrder(ip: string): number {
  const octets = ipOctets(ip);
  if (octets.length !== 4) throw new RangeError(`not an IPv4 address: ${ip}`);
  return octets.readUInt32BE(0);
}
