import { createHash } from 'node:crypto';
import { expect } from 'chai';
import {
  behindNat,
  deriveConnectionKeys,
  type KdfInput,
  kdfString,
  keyFromKdfString,
} from '../../../proxy/src/middle/codec/kdf.js';
import { hostOrderToIpv4 } from '../../support/middle-end-codec.js';
import { hex, loadVectors } from '../../support/vectors.js';

interface TelemtVector {
  name: string;
  nonce_srv: string;
  nonce_clt: string;
  clt_ts_field: string;
  srv_ip_field: string;
  clt_port_field: string;
  purpose: 'CLIENT';
  clt_ip_field: string;
  srv_port_field: string;
  proxy_secret: string;
  kdf_string: string;
  kdf_string_sha256: string;
  key: string;
  iv: string;
}
interface ConnectionVector {
  name: string;
  proxy_secret: string;
  nonce_srv: string;
  nonce_clt: string;
  crypto_ts: number;
  me_ip: string;
  me_port: number;
  proxy_local_ip: string;
  proxy_local_port: number;
  proxy_external_ip: string | null;
  proxy_write_kdf_string: string;
  proxy_write_key: string;
  proxy_write_iv: string;
  proxy_read_kdf_string: string;
  proxy_read_key: string;
  proxy_read_iv: string;
}

const file = loadVectors<{ vectors: (TelemtVector | ConnectionVector)[] }>('middle_proxy_kdf.json');
const telemt = file.vectors.find((v) => v.name === 'telemt_unit_test_inputs') as TelemtVector;
const connections = file.vectors.filter((v) => v.name !== telemt.name) as ConnectionVector[];

function inputOf(v: ConnectionVector): KdfInput {
  return {
    nonceServer: hex(v.nonce_srv),
    nonceClient: hex(v.nonce_clt),
    clientTimestamp: v.crypto_ts,
    server: { ip: v.me_ip, port: v.me_port },
    client: behindNat({ ip: v.proxy_local_ip, port: v.proxy_local_port }, v.proxy_external_ip ?? undefined),
    secret: hex(v.proxy_secret),
  };
}

describe('middle-proxy key derivation (vectors)', () => {
  for (const v of connections) {
    it(`${v.name}: builds both KDF strings from the connection's addresses and nonces`, () => {
      const input = inputOf(v);
      expect(kdfString(input, 'CLIENT').toString('hex')).to.equal(v.proxy_write_kdf_string);
      expect(kdfString(input, 'SERVER').toString('hex')).to.equal(v.proxy_read_kdf_string);
    });

    it(`${v.name}: derives the write (CLIENT) and read (SERVER) key and IV`, () => {
      const keys = deriveConnectionKeys(inputOf(v));
      expect(keys.clientToServer.key.toString('hex')).to.equal(v.proxy_write_key);
      expect(keys.clientToServer.iv.toString('hex')).to.equal(v.proxy_write_iv);
      expect(keys.serverToClient.key.toString('hex')).to.equal(v.proxy_read_key);
      expect(keys.serverToClient.iv.toString('hex')).to.equal(v.proxy_read_iv);
    });
  }

  it("telemt's unit-test inputs give its string, digest, key and IV", () => {
    // The vector gives the fields as placed in the string: reversed IPv4 octets, LE ports and time.
    const ipOfField = (field: string) => hostOrderToIpv4(hex(field).readUInt32LE(0));
    const input: KdfInput = {
      nonceServer: hex(telemt.nonce_srv),
      nonceClient: hex(telemt.nonce_clt),
      clientTimestamp: hex(telemt.clt_ts_field).readUInt32LE(0),
      server: { ip: ipOfField(telemt.srv_ip_field), port: hex(telemt.srv_port_field).readUInt16LE(0) },
      client: { ip: ipOfField(telemt.clt_ip_field), port: hex(telemt.clt_port_field).readUInt16LE(0) },
      secret: hex(telemt.proxy_secret),
    };
    const s = kdfString(input, telemt.purpose);
    expect(s.toString('hex')).to.equal(telemt.kdf_string);
    expect(createHash('sha256').update(s).digest('hex')).to.equal(telemt.kdf_string_sha256);
    const k = keyFromKdfString(s);
    expect(k.key.toString('hex')).to.equal(telemt.key);
    expect(k.iv.toString('hex')).to.equal(telemt.iv);
  });

  it('uses the external address behind NAT but keeps the local port', () => {
    const nat = connections.find((v) => v.proxy_external_ip !== null)!;
    const local = { ip: nat.proxy_local_ip, port: nat.proxy_local_port };
    const withLocalIp = kdfString({ ...inputOf(nat), client: local }, 'CLIENT').toString('hex');
    expect(withLocalIp).to.not.equal(nat.proxy_write_kdf_string);
    expect(behindNat(local, nat.proxy_external_ip!)).to.deep.equal({
      ip: nat.proxy_external_ip,
      port: nat.proxy_local_port,
    });
  });

  it('reads an IPv4-mapped socket address as IPv4', () => {
    const v = connections.find((c) => c.name === 'ipv4_no_nat')!;
    const input = inputOf(v);
    const mapped = { ...input, client: { ip: `::ffff:${input.client.ip}`, port: input.client.port } };
    expect(kdfString(mapped, 'CLIENT').toString('hex')).to.equal(v.proxy_write_kdf_string);
  });

  it('refuses to mix an IPv4 middle-end with an IPv6 proxy address', () => {
    const v = connections.find((c) => c.name === 'ipv4_no_nat')!;
    const input = { ...inputOf(v), client: { ip: '2001:db8::10', port: 40000 } };
    expect(() => kdfString(input, 'CLIENT')).to.throw(RangeError, 'different families');
  });
});
