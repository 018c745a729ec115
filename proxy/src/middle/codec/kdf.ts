// Keys of one middle-end connection (§6.5). Both ends build the same string from the two nonces,
// our timestamp, both addresses as the middle-end sees them and the shared proxy secret:
//
//   s = nonce_srv || nonce_clt || clt_ts || srv_ip || clt_port || purpose || clt_ip || srv_port
//       || secret || nonce_srv || [clt_ipv6 || srv_ipv6] || nonce_clt
//   key = MD5(s[1:])[0:12] || SHA1(s),  iv = MD5(s[2:])
//
// IPv4 addresses go in with their octets reversed; on IPv6 both 4-byte fields are zero and the
// two 16-byte addresses come before the last nonce. Purpose CLIENT keys the proxy -> middle-end
// direction, SERVER the other.
import { createHash } from 'node:crypto';
import { type Endpoint, ipOctets } from './address.js';
import type { CbcKey } from './cbc-stream.js';

export type KeyPurpose = 'CLIENT' | 'SERVER';

export interface KdfInput {
  /** Nonce of the middle-end's RPC_NONCE answer. */
  readonly nonceServer: Buffer;
  /** Nonce of our RPC_NONCE. */
  readonly nonceClient: Buffer;
  /** The timestamp we put in our RPC_NONCE (not the middle-end's). */
  readonly clientTimestamp: number;
  /** The middle-end as this connection reaches it. */
  readonly server: Endpoint;
  /** The proxy as the middle-end sees it: external IP behind NAT, local port (see `behindNat`). */
  readonly client: Endpoint;
  /** The proxy secret (getProxySecret), all of it. */
  readonly secret: Buffer;
}

/** The client address for the KDF behind NAT: the external IP with the local port kept. */
export function behindNat(local: Endpoint, externalIp: string | undefined): Endpoint {
  return externalIp === undefined ? local : { ip: externalIp, port: local.port };
}

export function kdfString(input: KdfInput, purpose: KeyPurpose): Buffer {
  const serverIp = ipOctets(input.server.ip);
  const clientIp = ipOctets(input.client.ip);
  if (serverIp.length !== clientIp.length) {
    throw new RangeError(`KDF addresses of different families: ${input.server.ip} and ${input.client.ip}`);
  }
  const v6 = serverIp.length === 16;
  const ipField = (octets: Buffer) => (v6 ? Buffer.alloc(4) : Buffer.from(octets).reverse());
  const le16 = (n: number) => Buffer.from([n & 0xff, (n >>> 8) & 0xff]);
  const ts = Buffer.alloc(4);
  ts.writeUInt32LE(input.clientTimestamp >>> 0);
  return Buffer.concat([
    input.nonceServer,
    input.nonceClient,
    ts,
    ipField(serverIp),
    le16(input.client.port),
    Buffer.from(purpose, 'latin1'),
    ipField(clientIp),
    le16(input.server.port),
    input.secret,
    input.nonceServer,
    ...(v6 ? [clientIp, serverIp] : []),
    input.nonceClient,
  ]);
}

export function keyFromKdfString(s: Buffer): CbcKey {
  const md5 = (data: Buffer) => createHash('md5').update(data).digest();
  return {
    key: Buffer.concat([md5(s.subarray(1)).subarray(0, 12), createHash('sha1').update(s).digest()]),
    iv: md5(s.subarray(2)),
  };
}

export interface ConnectionKeys {
  /** Proxy -> middle-end (purpose CLIENT): the proxy's write key, the middle-end's read key. */
  readonly clientToServer: CbcKey;
  /** Middle-end -> proxy (purpose SERVER). */
  readonly serverToClient: CbcKey;
}

export function deriveConnectionKeys(input: KdfInput): ConnectionKeys {
  return {
    clientToServer: keyFromKdfString(kdfString(input, 'CLIENT')),
    serverToClient: keyFromKdfString(kdfString(input, 'SERVER')),
  };
}
