import { expect } from 'chai';
import { HANDSHAKE_FLAG_CRC32C, ProxyReqFlag, RPC } from '../../../proxy/src/middle/codec/constants.js';
import {
  encodeHandshake,
  parseHandshake,
  verifyHandshakeAnswer,
} from '../../../proxy/src/middle/codec/rpc-handshake.js';
import { parseMiddleEndMessage } from '../../../proxy/src/middle/codec/rpc-messages.js';
import {
  encodeNonce,
  keySelectorOf,
  parseNonce,
  verifyNonce,
} from '../../../proxy/src/middle/codec/rpc-nonce.js';
import { ProxyReqHeader, type ProxyReqTemplate } from '../../../proxy/src/middle/codec/rpc-proxy-req.js';
import { encodeTlString } from '../../../proxy/src/middle/codec/tl-string.js';
import { ProtocolError } from '../../../proxy/src/protocol/errors.js';
import {
  encodeCloseExt,
  encodeHandshakeError,
  encodeProxyAns,
  encodeProxyReq,
  encodeSimpleAck,
  PLACEHOLDER_PID,
  parseProxyMessage,
  parseProxyReq,
  parseTlString,
  processId,
} from '../../support/middle-end-codec.js';

const secret = Buffer.alloc(128, 0x5a);
const now = 1_700_000_000;
const nonce = Buffer.alloc(16, 7);

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (error) {
    expect(error).to.be.instanceOf(ProtocolError);
    return (error as ProtocolError).code;
  }
  return expect.fail('accepted');
}

describe('RPC_NONCE', () => {
  const expectation = { keySelector: keySelectorOf(secret), now };
  const answer = (changes: { timestamp?: number; schema?: number; keySelector?: Buffer } = {}) =>
    parseNonce(encodeNonce({ keySelector: keySelectorOf(secret), timestamp: now, nonce, ...changes }));

  it('accepts an answer for our secret within 30 s of our timestamp', () => {
    for (const skew of [-30, 0, 30]) verifyNonce(answer({ timestamp: now + skew }), expectation);
    expect(answer().nonce).to.deep.equal(nonce);
  });

  it('refuses a clock 31 s off either way', () => {
    expect(codeOf(() => verifyNonce(answer({ timestamp: now + 31 }), expectation))).to.equal(
      'ERR_MP_NONCE_CLOCK',
    );
    expect(codeOf(() => verifyNonce(answer({ timestamp: now - 31 }), expectation))).to.equal(
      'ERR_MP_NONCE_CLOCK',
    );
  });

  it('refuses another secret and any schema but AES', () => {
    const other = answer({ keySelector: Buffer.from('00000001', 'hex') });
    expect(codeOf(() => verifyNonce(other, expectation))).to.equal('ERR_MP_NONCE_KEY');
    for (const schema of [0, 2, 3]) {
      expect(codeOf(() => verifyNonce(answer({ schema }), expectation))).to.equal('ERR_MP_NONCE_SCHEMA');
    }
  });

  it('refuses another message type or a nonce of the wrong size', () => {
    expect(
      codeOf(() => parseNonce(encodeHandshake({ flags: 0, sender: PLACEHOLDER_PID, peer: PLACEHOLDER_PID }))),
    ).to.equal('ERR_MP_NONCE');
    const long = Buffer.concat([
      encodeNonce({ keySelector: keySelectorOf(secret), timestamp: now, nonce }),
      Buffer.alloc(4),
    ]);
    expect(codeOf(() => parseNonce(long))).to.equal('ERR_MP_NONCE');
  });
});

describe('RPC_HANDSHAKE', () => {
  const ours = {
    flags: 0,
    sender: processId('10.0.0.5', 8888, 4321, now),
    peer: processId('192.0.2.1', 8888, 0, 0),
  };
  const reply = (flags: number, peer = ours.sender) =>
    parseHandshake(encodeHandshake({ flags, sender: processId('192.0.2.1', 8888, 99, now), peer }));

  it('accepts an answer that names us as its peer', () => {
    expect(verifyHandshakeAnswer(reply(0), ours)).to.deep.equal({ crc32c: false });
  });

  it('treats zero fields of the echoed pid as wildcards, as the official client does', () => {
    expect(verifyHandshakeAnswer(reply(0, { ip: 0, port: 8888, pid: 0, utime: 0 }), ours).crc32c).to.equal(
      false,
    );
    const other = processId('10.0.0.6', 8888, 4321, now);
    expect(codeOf(() => verifyHandshakeAnswer(reply(0, other), ours))).to.equal('ERR_MP_HANDSHAKE_PID');
  });

  it('switches to CRC32C only when both sides asked for it', () => {
    const asking = { ...ours, flags: HANDSHAKE_FLAG_CRC32C };
    expect(verifyHandshakeAnswer(reply(HANDSHAKE_FLAG_CRC32C), asking).crc32c).to.equal(true);
    expect(verifyHandshakeAnswer(reply(0), asking).crc32c).to.equal(false);
    expect(codeOf(() => verifyHandshakeAnswer(reply(HANDSHAKE_FLAG_CRC32C), ours))).to.equal(
      'ERR_MP_HANDSHAKE_FLAGS',
    );
  });

  it('refuses low flag bits', () => {
    expect(codeOf(() => verifyHandshakeAnswer(reply(0x01), ours))).to.equal('ERR_MP_HANDSHAKE_FLAGS');
  });

  it('reports RPC_HANDSHAKE_ERROR with its code', () => {
    const refused = encodeHandshakeError(-6, PLACEHOLDER_PID);
    expect(codeOf(() => parseHandshake(refused))).to.equal('ERR_MP_HANDSHAKE_REFUSED');
    expect(() => parseHandshake(refused)).to.throw('error -6');
  });

  it('refuses a handshake of the wrong size', () => {
    const short = encodeHandshake(ours).subarray(0, 28);
    expect(codeOf(() => parseHandshake(short))).to.equal('ERR_MP_HANDSHAKE');
  });
});

describe('RPC_PROXY_REQ', () => {
  const tag = Buffer.alloc(16, 0xab);
  const base: ProxyReqTemplate = {
    connId: 0x0123456789abcdefn,
    transport: 'abridged',
    client: { ip: '198.51.100.23', port: 51234 },
    proxy: { ip: '203.0.113.10', port: 443 },
    adTag: tag,
  };
  const encrypted = Buffer.alloc(64, 1);
  const handshake = Buffer.concat([Buffer.alloc(8), Buffer.alloc(32, 2)]);
  const flagsOf = (t: ProxyReqTemplate, packet: Buffer, quickAck = false, dropped = false) =>
    new ProxyReqHeader(t).forPacket(packet, quickAck, dropped).readUInt32LE(4);
  const common = ProxyReqFlag.MAGIC | ProxyReqFlag.EXTMODE2;

  it('marks the client transport, the tag, quick acks and unencrypted packets', () => {
    const { ABRIDGED, INTERMEDIATE, PAD, HAS_AD_TAG, QUICKACK, NOT_ENCRYPTED, DROPPED } = ProxyReqFlag;
    expect(flagsOf(base, encrypted)).to.equal(common | ABRIDGED | HAS_AD_TAG);
    expect(flagsOf({ ...base, transport: 'intermediate' }, encrypted)).to.equal(
      common | INTERMEDIATE | HAS_AD_TAG,
    );
    expect(flagsOf({ ...base, transport: 'padded' }, encrypted)).to.equal(common | INTERMEDIATE | HAS_AD_TAG);
    expect(flagsOf({ ...base, transport: 'padded', forwardPadFlag: true }, encrypted)).to.equal(
      common | INTERMEDIATE | PAD | HAS_AD_TAG,
    );
    expect(flagsOf(base, encrypted, true)).to.equal((common | ABRIDGED | HAS_AD_TAG | QUICKACK) >>> 0);
    expect(flagsOf(base, handshake)).to.equal(common | ABRIDGED | HAS_AD_TAG | NOT_ENCRYPTED);
    expect(flagsOf(base, encrypted, false, true)).to.equal(common | ABRIDGED | HAS_AD_TAG | DROPPED);
  });

  it('without a tag: no flag 0x8 and no extra section', () => {
    const header = new ProxyReqHeader({ ...base, adTag: undefined });
    expect(header.length).to.equal(56);
    const request = parseProxyReq(encodeProxyReq({ ...base, adTag: undefined }, encrypted, false));
    expect(request.flags & ProxyReqFlag.HAS_AD_TAG).to.equal(0);
    expect(request.extra).to.equal(undefined);
    expect(request.packet).to.deep.equal(encrypted);
  });

  it('with a tag: TL_PROXY_TAG and the tag as a TL string, 24 bytes of extra', () => {
    const header = new ProxyReqHeader(base).forPacket(encrypted, false);
    expect(header.readUInt32LE(56)).to.equal(24);
    expect(header.subarray(60).toString('hex')).to.equal(`ae261edb10${tag.toString('hex')}000000`);
  });

  it('reuses one header buffer per client and rewrites only its flags', () => {
    const header = new ProxyReqHeader(base);
    const first = header.forPacket(encrypted, true);
    const before = Buffer.from(first);
    const second = header.forPacket(handshake, false);
    expect(second).to.equal(first);
    expect(second.subarray(8)).to.deep.equal(before.subarray(8));
    expect(second.readUInt32LE(4)).to.not.equal(before.readUInt32LE(4));
  });

  it('writes IPv6 clients as 16 bytes and IPv4 ones mapped, and reads them back', () => {
    const v6 = { ...base, client: { ip: '2001:db8:1::23', port: 51000 } };
    const request = parseProxyReq(encodeProxyReq(v6, encrypted, false));
    expect(request.client).to.deep.equal(v6.client);
    expect(request.proxy).to.deep.equal(base.proxy);
    expect(request.connId).to.equal(base.connId);
    expect(request.adTag).to.deep.equal(tag);
  });

  it('refuses a tag that is not 16 bytes', () => {
    expect(() => new ProxyReqHeader({ ...base, adTag: Buffer.alloc(15) })).to.throw(RangeError);
  });

  it('a middle-end refuses an extra section that does not fit or announces a tag it lacks', () => {
    const payload = encodeProxyReq(base, encrypted, false);
    const tooBig = Buffer.from(payload);
    tooBig.writeUInt32LE(payload.length, 56);
    expect(codeOf(() => parseProxyReq(tooBig))).to.equal('ERR_MP_PROXY_REQ');
    const noTag = encodeProxyReq({ ...base, adTag: undefined }, encrypted, false);
    noTag.writeUInt32LE(noTag.readUInt32LE(4) | ProxyReqFlag.HAS_AD_TAG, 4);
    expect(codeOf(() => parseProxyReq(noTag))).to.equal('ERR_MP_PROXY_REQ');
  });
});

describe('TL strings', () => {
  for (const length of [0, 1, 3, 16, 253, 254, 1000]) {
    it(`${length} bytes round-trip and pad to a multiple of 4`, () => {
      const value = Buffer.alloc(length, 0x61);
      const encoded = encodeTlString(value);
      expect(encoded.length % 4).to.equal(0);
      expect(encoded[0]).to.equal(length <= 253 ? length : 0xfe);
      const parsed = parseTlString(encoded, 0);
      expect(parsed.value).to.deep.equal(value);
      expect(parsed.end).to.equal(encoded.length);
    });
  }

  it('refuses a string running past the end', () => {
    expect(codeOf(() => parseTlString(encodeTlString(Buffer.alloc(20)).subarray(0, 20), 0))).to.equal(
      'ERR_MP_TL_STRING',
    );
    expect(codeOf(() => parseTlString(Buffer.from([0xff, 0, 0, 0]), 0))).to.equal('ERR_MP_TL_STRING');
  });
});

describe('middle-end messages', () => {
  const connId = 42n;

  it('RPC_PROXY_ANS, RPC_SIMPLE_ACK and RPC_CLOSE_EXT name the client they are for', () => {
    expect(parseMiddleEndMessage(encodeProxyAns(8, connId, Buffer.alloc(8, 3)))).to.deep.equal({
      kind: 'answer',
      flags: 8,
      connId,
      data: Buffer.alloc(8, 3),
    });
    const token = Buffer.from('01020304', 'hex');
    expect(parseMiddleEndMessage(encodeSimpleAck(connId, token))).to.deep.equal({
      kind: 'simple-ack',
      connId,
      token,
    });
    expect(parseMiddleEndMessage(encodeCloseExt(connId))).to.deep.equal({ kind: 'close-ext', connId });
  });

  it('ignores unknown types and known ones of the wrong size, as the official proxy does', () => {
    const unknown = Buffer.from('0102030405060708', 'hex');
    expect(parseMiddleEndMessage(unknown)).to.deep.equal({ kind: 'unknown', type: 0x04030201, length: 8 });
    const longAck = Buffer.concat([encodeSimpleAck(connId, Buffer.alloc(4)), Buffer.alloc(4)]);
    expect(parseMiddleEndMessage(longAck)).to.deep.include({ kind: 'unknown', type: RPC.SIMPLE_ACK });
  });

  it('a payload too short to have a type is a protocol error', () => {
    expect(codeOf(() => parseMiddleEndMessage(Buffer.alloc(2)))).to.equal('ERR_MP_MESSAGE');
    expect(codeOf(() => parseProxyMessage(Buffer.alloc(0)))).to.equal('ERR_MP_MESSAGE');
  });
});
