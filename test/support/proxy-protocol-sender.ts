// The load balancer's side of the PROXY protocol (haproxy.org proxy-protocol.txt): the header it
// writes before a client's bytes. The proxy only reads these; tests send them. The signature and
// the command and family bytes are written here from the specification, not taken from the
// proxy's parser, so a wrong constant there fails the tests instead of agreeing with itself.
import { isIP } from 'node:net';
import type { ProxyAddress } from '../../proxy/src/protocol/proxy-protocol.js';

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
const V2_LOCAL = 0x20;
const V2_PROXY = 0x21;
const TCP_OVER_IPV4 = 0x11;
const TCP_OVER_IPV6 = 0x21;

/** A v1 line: `PROXY TCP4|TCP6 source destination sport dport\r\n`. */
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
  const head = Buffer.alloc(16);
  V2_SIGNATURE.copy(head);
  if (source === undefined || destination === undefined) {
    head[12] = V2_LOCAL;
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
  head[12] = V2_PROXY;
  head[13] = v6 ? TCP_OVER_IPV6 : TCP_OVER_IPV4;
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
