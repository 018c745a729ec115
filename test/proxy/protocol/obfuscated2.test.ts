import { expect } from 'chai';
import {
  createDcHeader,
  ctrCipher,
  dcHeaderFromInit,
  isAcceptableRandomHeader,
  parseClientHeader,
} from '../../../proxy/src/protocol/obfuscated2.js';
import { hex, loadVectors } from '../../support/vectors.js';

interface ClientVector {
  name: string;
  secret: string;
  expected_user: string;
  header_on_wire: string;
  proxy_decrypt_key: string;
  proxy_decrypt_iv: string;
  proxy_encrypt_key: string;
  proxy_encrypt_iv: string;
  expected_transport: string;
  expected_dc: number;
  c2p_plain: string;
  c2p_cipher: string;
  p2c_plain: string;
  p2c_cipher: string;
}
interface ClientFile {
  vectors: ClientVector[];
  negative: { name: string; header_on_wire: string; expected: string }[];
}
interface DcVector {
  name: string;
  mode: string;
  init_plain: string;
  header_on_wire: string;
  proxy_to_dc_key: string;
  proxy_to_dc_iv: string;
  dc_to_proxy_key: string;
  dc_to_proxy_iv: string;
  fast_mode_client_leg_encrypt_key_iv: string | null;
  random_64_drawn: string;
  transport: string;
  p2d_plain: string;
  p2d_cipher: string;
  d2p_plain: string;
  d2p_cipher: string;
}

const clientFile = loadVectors<ClientFile>('obfuscated2_client.json');
const dcFile = loadVectors<{ vectors: DcVector[] }>('obfuscated2_dc.json');
// The proxy under test is configured with both users; the order decides secretIndex.
const users = {
  alice: hex('00112233445566778899aabbccddeeff'),
  bob: hex('ffeeddccbbaa99887766554433221100'),
};
const secrets = [users.alice, users.bob];
const transportNames: Record<string, string> = {
  abridged: 'abridged',
  intermediate: 'intermediate',
  padded_intermediate: 'padded',
};

describe('obfuscated2 client header (vectors)', () => {
  for (const v of clientFile.vectors) {
    it(`${v.name}: finds the user, transport, DC and both key pairs`, () => {
      const h = parseClientHeader(hex(v.header_on_wire), secrets);
      expect(h, 'header accepted').to.not.equal(undefined);
      expect(h!.secretIndex).to.equal(v.expected_user === 'alice' ? 0 : 1);
      expect(h!.transport).to.equal(transportNames[v.expected_transport]);
      expect(h!.dc).to.equal(v.expected_dc);
      expect(h!.decrypt.key.toString('hex')).to.equal(v.proxy_decrypt_key);
      expect(h!.decrypt.iv.toString('hex')).to.equal(v.proxy_decrypt_iv);
      expect(h!.encrypt.key.toString('hex')).to.equal(v.proxy_encrypt_key);
      expect(h!.encrypt.iv.toString('hex')).to.equal(v.proxy_encrypt_iv);
    });

    it(`${v.name}: client stream continues at byte 64, proxy stream starts at 0`, () => {
      const h = parseClientHeader(hex(v.header_on_wire), secrets)!;
      expect(h.decryptor.update(hex(v.c2p_cipher)).toString('hex')).to.equal(v.c2p_plain);
      expect(ctrCipher(h.encrypt).update(hex(v.p2c_plain)).toString('hex')).to.equal(v.p2c_cipher);
    });
  }

  it('refuses a header made with a secret we do not have', () => {
    const neg = clientFile.negative.find((n) => n.name === 'unknown_secret')!;
    expect(parseClientHeader(hex(neg.header_on_wire), secrets)).to.equal(undefined);
  });

  it('rejects a header of the wrong size with our own error', () => {
    expect(() => parseClientHeader(Buffer.alloc(63), secrets)).to.throw('64 bytes');
  });
});

describe('obfuscated2 header towards a DC (vectors)', () => {
  for (const v of dcFile.vectors) {
    it(`${v.name}: wire bytes, keys and both payload directions`, () => {
      const h = dcHeaderFromInit(hex(v.init_plain));
      expect(h.wire.toString('hex')).to.equal(v.header_on_wire);
      expect(h.encrypt.key.toString('hex')).to.equal(v.proxy_to_dc_key);
      expect(h.encrypt.iv.toString('hex')).to.equal(v.proxy_to_dc_iv);
      expect(h.decrypt.key.toString('hex')).to.equal(v.dc_to_proxy_key);
      expect(h.decrypt.iv.toString('hex')).to.equal(v.dc_to_proxy_iv);
      expect(h.encryptor.update(hex(v.p2d_plain)).toString('hex')).to.equal(v.p2d_cipher);
      expect(ctrCipher(h.decrypt).update(hex(v.d2p_cipher)).toString('hex')).to.equal(v.d2p_plain);
    });

    it(`${v.name}: createDcHeader builds the same init from the same random draw`, () => {
      const fast = v.fast_mode_client_leg_encrypt_key_iv
        ? hex(v.fast_mode_client_leg_encrypt_key_iv)
        : undefined;
      const random = () => hex(v.random_64_drawn);
      const transport = transportNames[v.transport] as 'abridged' | 'intermediate' | 'padded';
      const h = createDcHeader(
        random,
        transport,
        fast && { key: fast.subarray(0, 32), iv: fast.subarray(32) },
      );
      // The reference leaves bytes 60..63 random, and so do we.
      expect(h.init.toString('hex')).to.equal(v.init_plain);
    });
  }

  it('never emits a header a middlebox could mistake for HTTP, TLS or another transport', () => {
    const bad = [
      Buffer.from('efaaaaaa11111111', 'hex'),
      Buffer.from('HEAD1111', 'latin1'),
      Buffer.from('POST1111', 'latin1'),
      Buffer.from('GET 1111', 'latin1'),
      Buffer.from('OPTI1111', 'latin1'),
      Buffer.from('1603010211111111', 'hex'),
      Buffer.from('dddddddd11111111', 'hex'),
      Buffer.from('eeeeeeee11111111', 'hex'),
      Buffer.from('0102030400000000', 'hex'),
    ].map((p) => Buffer.concat([p, Buffer.alloc(56, 1)]));
    for (const b of bad)
      expect(isAcceptableRandomHeader(b), b.subarray(0, 8).toString('hex')).to.equal(false);
    let draws = 0;
    const h = createDcHeader(() => bad[draws++] ?? Buffer.alloc(64, 7), 'padded');
    expect(draws).to.equal(bad.length + 1);
    expect(h.init.subarray(0, 8).toString('hex')).to.equal('0707070707070707');
  });
});
