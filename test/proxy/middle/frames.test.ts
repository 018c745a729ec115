import { crc32 } from 'node:zlib';
import { expect } from 'chai';
import type { Endpoint } from '../../../proxy/src/middle/codec/address.js';
import { CbcStream } from '../../../proxy/src/middle/codec/cbc-stream.js';
import { ProxyReqFlag } from '../../../proxy/src/middle/codec/constants.js';
import { crc32c } from '../../../proxy/src/middle/codec/crc32c.js';
import { FrameReader, FrameWriter } from '../../../proxy/src/middle/codec/full-transport.js';
import { behindNat, deriveConnectionKeys } from '../../../proxy/src/middle/codec/kdf.js';
import {
  encodeHandshake,
  parseHandshake,
  verifyHandshakeAnswer,
} from '../../../proxy/src/middle/codec/rpc-handshake.js';
import {
  encodeCloseConn,
  encodePong,
  type MiddleEndMessage,
  parseMiddleEndMessage,
} from '../../../proxy/src/middle/codec/rpc-messages.js';
import {
  encodeNonce,
  keySelectorOf,
  parseNonce,
  verifyNonce,
} from '../../../proxy/src/middle/codec/rpc-nonce.js';
import { ProxyReqHeader } from '../../../proxy/src/middle/codec/rpc-proxy-req.js';
import type { Transport } from '../../../proxy/src/protocol/obfuscated2.js';
import {
  encodeProxyReq,
  PLACEHOLDER_PID,
  parseProxyMessage,
  processId,
} from '../../support/middle-end-codec.js';
import { hex, loadVectors } from '../../support/vectors.js';

interface Session {
  name: string;
  proxy_secret: string;
  me_addr: string;
  proxy_local_addr: string;
  proxy_external_ipv4: string | null;
  proxy_external_ipv6: string | null;
  nonce_clt: string;
  nonce_srv: string;
  crypto_ts: number;
  proxy_write_key: string;
  proxy_write_iv: string;
  proxy_read_key: string;
  proxy_read_iv: string;
  c2s_rpc_nonce_payload: string;
  c2s_rpc_nonce_frame: string;
  c2s_rpc_nonce_wire: string;
  s2c_rpc_nonce_wire: string;
  c2s_rpc_handshake_plain: string;
  c2s_rpc_handshake_wire: string;
  s2c_rpc_handshake_payload: string;
  s2c_rpc_handshake_wire: string;
  client_addr: string;
  client_transport: string;
  quickack: boolean;
  out_conn_id: string;
  ad_tag: string;
  proxy_req_message: string;
  proxy_req_flags: string;
  proxy_req_rpc_payload: string;
  proxy_req_frame_plain: string;
  proxy_req_wire: string;
  proxy_req_layout: Record<string, string>;
  s2c_proxy_ans_payload: string;
  s2c_simple_ack_payload: string;
  s2c_close_ext_payload: string;
  expected_to_client_data: string;
  expected_to_client_quickack_token: string;
}
interface StandaloneFrame {
  name: string;
  seq: number;
  payload: string;
  frame: string;
  wire_with_padding: string;
  crc32: string;
}
interface PidJson {
  ip: string;
  port: number;
  pid: number;
  utime: number;
}
interface CDerived {
  name: string;
  flags?: string;
  payload?: string;
  frame_seq_0?: string;
  sender_pid?: PidJson;
  peer_pid?: PidJson;
  frame_seq_minus_1?: string;
  crc32c?: string;
  frame?: string;
  frame_seq_minus_2?: string;
}

const file = loadVectors<{ vectors: Session[]; frames: StandaloneFrame[]; c_derived: CDerived[] }>(
  'middle_proxy_frames.json',
);
const cDerived = (name: string) => file.c_derived.find((c) => c.name === name)!;
const transports: Record<string, Transport> = {
  abridged: 'abridged',
  intermediate: 'intermediate',
  padded_intermediate: 'padded',
};

function endpointOf(addr: string): Endpoint {
  const colon = addr.lastIndexOf(':');
  return { ip: addr.slice(0, colon), port: Number(addr.slice(colon + 1)) };
}

function frameCrc(frame: Buffer): string {
  return crc32(frame.subarray(0, -4)).toString(16).padStart(8, '0');
}

function sessionOf(v: Session) {
  const secret = hex(v.proxy_secret);
  const external = v.proxy_external_ipv4 ?? v.proxy_external_ipv6 ?? undefined;
  const proxy = behindNat(endpointOf(v.proxy_local_addr), external);
  const keys = deriveConnectionKeys({
    nonceServer: hex(v.nonce_srv),
    nonceClient: hex(v.nonce_clt),
    clientTimestamp: v.crypto_ts,
    server: endpointOf(v.me_addr),
    client: proxy,
    secret,
  });
  const ourNonce = encodeNonce({
    keySelector: keySelectorOf(secret),
    timestamp: v.crypto_ts,
    nonce: hex(v.nonce_clt),
  });
  const ourHandshake = { flags: 0, sender: PLACEHOLDER_PID, peer: PLACEHOLDER_PID };
  const template = {
    connId: hex(v.out_conn_id).readBigUInt64LE(0),
    transport: transports[v.client_transport]!,
    client: endpointOf(v.client_addr),
    proxy,
    adTag: hex(v.ad_tag),
  };
  return { secret, keys, ourNonce, ourHandshake, template };
}

describe('middle-end sessions, proxy side (vectors)', () => {
  for (const v of file.vectors) {
    const s = sessionOf(v);
    const message = hex(v.proxy_req_message);

    it(`${v.name}: derives the connection keys from the exchanged nonces`, () => {
      expect(s.keys.clientToServer.key.toString('hex')).to.equal(v.proxy_write_key);
      expect(s.keys.clientToServer.iv.toString('hex')).to.equal(v.proxy_write_iv);
      expect(s.keys.serverToClient.key.toString('hex')).to.equal(v.proxy_read_key);
      expect(s.keys.serverToClient.iv.toString('hex')).to.equal(v.proxy_read_iv);
    });

    it(`${v.name}: the proxy opens with RPC_NONCE, unpadded by default and padded as mtprotoproxy`, () => {
      expect(s.ourNonce.toString('hex')).to.equal(v.c2s_rpc_nonce_payload);
      expect(new FrameWriter().frame(s.ourNonce).toString('hex')).to.equal(v.c2s_rpc_nonce_frame);
      expect(new FrameWriter({ padClearText: true }).frame(s.ourNonce).toString('hex')).to.equal(
        v.c2s_rpc_nonce_wire,
      );
    });

    it(`${v.name}: the middle-end's nonce answer is accepted and carries its nonce`, () => {
      const reader = new FrameReader();
      reader.push(hex(v.s2c_rpc_nonce_wire));
      const frame = reader.next()!;
      expect(frame.seq).to.equal(-2);
      const answer = parseNonce(frame.payload);
      verifyNonce(answer, { keySelector: keySelectorOf(s.secret), now: v.crypto_ts });
      expect(answer.nonce.toString('hex')).to.equal(v.nonce_srv);
      expect(reader.next()).to.equal(undefined);
    });

    it(`${v.name}: handshake and RPC_PROXY_REQ go out on one CBC chain`, () => {
      const writer = new FrameWriter({ padClearText: true });
      writer.frame(s.ourNonce);
      writer.startEncryption(s.keys.clientToServer);
      const handshake = writer.frame(encodeHandshake(s.ourHandshake));
      expect(handshake.toString('hex')).to.equal(v.c2s_rpc_handshake_wire);
      const header = new ProxyReqHeader({ ...s.template, forwardPadFlag: true });
      const request = writer.frame([header.forPacket(message, v.quickack), message]);
      expect(request.toString('hex')).to.equal(v.proxy_req_wire);
      // The same bytes in clear, for a reader of the vector.
      const clear = CbcStream.decrypting(s.keys.clientToServer).update(Buffer.concat([handshake, request]));
      expect(clear.subarray(0, handshake.length).toString('hex')).to.equal(v.c2s_rpc_handshake_plain);
      expect(clear.subarray(handshake.length).toString('hex')).to.equal(v.proxy_req_frame_plain);
    });

    it(`${v.name}: RPC_PROXY_REQ has the reference's flags and field layout`, () => {
      const payload = encodeProxyReq({ ...s.template, forwardPadFlag: true }, message, v.quickack);
      expect(payload.toString('hex')).to.equal(v.proxy_req_rpc_payload);
      expect(payload.readUInt32LE(4)).to.equal(Number(v.proxy_req_flags));
      const layout = v.proxy_req_layout;
      const fields = [
        ['type', 4],
        ['flags', 4],
        ['out_conn_id', 8],
        ['client_ip16_port4', 20],
        ['proxy_ip16_port4', 20],
        ['extra_size', 4],
        ['extra', 24],
      ] as const;
      let at = 0;
      for (const [name, size] of fields) {
        expect(payload.subarray(at, at + size).toString('hex'), name).to.equal(layout[name]);
        at += size;
      }
      expect(payload.subarray(at).toString('hex')).to.equal(layout.message);
    });

    if (v.client_transport === 'padded_intermediate') {
      it(`${v.name}: by default the PAD flag is not forwarded, as the official proxy does`, () => {
        const payload = encodeProxyReq(s.template, message, v.quickack);
        expect(payload.readUInt32LE(4)).to.equal((Number(v.proxy_req_flags) & ~ProxyReqFlag.PAD) >>> 0);
      });
    }

    it(`${v.name}: the middle-end's frames decode on the SERVER key into what the client gets`, () => {
      // The middle-end side is written with the same codecs, keys swapped.
      const me = new FrameWriter();
      const meNonce = encodeNonce({
        keySelector: keySelectorOf(s.secret),
        timestamp: v.crypto_ts,
        nonce: hex(v.nonce_srv),
      });
      expect(me.frame(meNonce).toString('hex')).to.equal(v.s2c_rpc_nonce_wire);
      me.startEncryption(s.keys.serverToClient);
      expect(me.frame(hex(v.s2c_rpc_handshake_payload)).toString('hex')).to.equal(v.s2c_rpc_handshake_wire);
      const answers = me.frames(
        [v.s2c_proxy_ans_payload, v.s2c_simple_ack_payload, v.s2c_close_ext_payload].map(hex),
      );

      const reader = new FrameReader();
      reader.push(hex(v.s2c_rpc_nonce_wire));
      parseNonce(reader.next()!.payload);
      reader.startDecryption(s.keys.serverToClient);
      reader.push(hex(v.s2c_rpc_handshake_wire));
      reader.push(answers);
      const handshake = reader.next()!;
      expect(handshake.seq).to.equal(-1);
      expect(verifyHandshakeAnswer(parseHandshake(handshake.payload), s.ourHandshake)).to.deep.equal({
        crc32c: false,
      });
      const [answer, ack, close] = [reader.next()!, reader.next()!, reader.next()!].map((f) =>
        parseMiddleEndMessage(f.payload),
      ) as [MiddleEndMessage, MiddleEndMessage, MiddleEndMessage];
      expect(reader.next()).to.equal(undefined);
      expect(answer).to.deep.include({ kind: 'answer', connId: s.template.connId });
      expect(answer.kind === 'answer' && answer.data.toString('hex')).to.equal(v.expected_to_client_data);
      expect(ack).to.deep.include({ kind: 'simple-ack', connId: s.template.connId });
      expect(ack.kind === 'simple-ack' && ack.token.toString('hex')).to.equal(
        v.expected_to_client_quickack_token,
      );
      expect(close).to.deep.equal({ kind: 'close-ext', connId: s.template.connId });
    });

    it(`${v.name}: a middle-end reads the proxy's stream, padded clear nonce included`, () => {
      const reader = new FrameReader();
      reader.push(hex(v.c2s_rpc_nonce_wire + v.c2s_rpc_handshake_wire + v.proxy_req_wire));
      const nonce = parseNonce(reader.next()!.payload);
      verifyNonce(nonce, { keySelector: keySelectorOf(s.secret), now: v.crypto_ts });
      reader.startDecryption(s.keys.clientToServer);
      expect(parseHandshake(reader.next()!.payload)).to.deep.equal(s.ourHandshake);
      const message = parseProxyMessage(reader.next()!.payload);
      expect(message.kind).to.equal('request');
      if (message.kind !== 'request') return;
      const r = message.request;
      expect(r.flags).to.equal(Number(v.proxy_req_flags));
      expect(r.connId).to.equal(s.template.connId);
      expect(r.client).to.deep.equal(s.template.client);
      expect(r.proxy).to.deep.equal(s.template.proxy);
      expect(r.adTag!.toString('hex')).to.equal(v.ad_tag);
      expect(r.packet.toString('hex')).to.equal(v.proxy_req_message);
      expect(reader.next()).to.equal(undefined);
      expect(reader.buffered, 'padding words consumed').to.equal(0);
    });
  }
});

describe('standalone full-transport frames (vectors)', () => {
  for (const f of file.frames) {
    it(`${f.name}: framed with seq ${f.seq} and CRC32, padded to 16 when padding is on`, () => {
      const frame = new FrameWriter({ firstSeq: f.seq }).frame(hex(f.payload));
      expect(frame.toString('hex')).to.equal(f.frame);
      expect(frameCrc(frame)).to.equal(f.crc32);
      const padded = new FrameWriter({ firstSeq: f.seq, padClearText: true }).frame(hex(f.payload));
      expect(padded.toString('hex')).to.equal(f.wire_with_padding);
    });

    it(`${f.name}: read back with its padding words skipped`, () => {
      const reader = new FrameReader({ firstSeq: f.seq });
      reader.push(hex(f.wire_with_padding));
      expect(reader.next()).to.deep.equal({ seq: f.seq, payload: hex(f.payload) });
      expect(reader.next()).to.equal(undefined);
      expect(reader.buffered).to.equal(0);
    });
  }

  it('a middle-end ping is answered with a pong carrying the same id', () => {
    const ping = parseMiddleEndMessage(hex(file.frames.find((f) => f.name === 'rpc_ping_seq_5')!.payload));
    expect(ping.kind).to.equal('ping');
    const pong = file.frames.find((f) => f.name === 'rpc_pong_seq_7')!;
    expect(ping.kind === 'ping' && encodePong(ping.pingId).toString('hex')).to.equal(pong.payload);
  });

  it('RPC_CLOSE_CONN names the client that went away', () => {
    const close = file.frames.find((f) => f.name === 'rpc_close_conn_seq_3')!;
    const parsed = parseProxyMessage(hex(close.payload));
    expect(parsed.kind).to.equal('close-conn');
    expect(parsed.kind === 'close-conn' && encodeCloseConn(parsed.connId).toString('hex')).to.equal(
      close.payload,
    );
  });
});

describe("the official proxy's layouts (c_derived vectors)", () => {
  const session = file.vectors[0]!;

  for (const name of ['proxy_req_without_ad_tag_official_layout', 'proxy_req_with_ad_tag_official_layout']) {
    const c = cDerived(name);
    it(`${name}: re-encodes field for field, flags ${c.flags}, frame seq 0`, () => {
      const parsed = parseProxyMessage(hex(c.payload!));
      if (parsed.kind !== 'request') expect.fail('not a request');
      const r = parsed.request;
      // The same client and packet as the first session; the tag (when there is one) too.
      expect(r.client).to.deep.equal(endpointOf(session.client_addr));
      expect(r.packet.toString('hex')).to.equal(session.proxy_req_message);
      expect(r.adTag?.toString('hex')).to.equal(name.includes('without') ? undefined : session.ad_tag);
      const template = {
        connId: r.connId,
        transport: 'intermediate' as const,
        client: r.client,
        proxy: r.proxy,
        adTag: r.adTag,
      };
      const payload = encodeProxyReq(template, r.packet, false);
      expect(payload.toString('hex')).to.equal(c.payload);
      expect(payload.readUInt32LE(4)).to.equal(Number(c.flags));
      expect(new FrameWriter({ firstSeq: 0 }).frame(payload).toString('hex')).to.equal(c.frame_seq_0);
    });
  }

  it('rpc_handshake_official_style: real process ids, frame seq -1', () => {
    const c = cDerived('rpc_handshake_official_style');
    const pid = (p: PidJson) => processId(p.ip, p.port, p.pid, p.utime);
    const payload = encodeHandshake({ flags: 0, sender: pid(c.sender_pid!), peer: pid(c.peer_pid!) });
    expect(payload.toString('hex')).to.equal(c.payload);
    expect(new FrameWriter({ firstSeq: -1 }).frame(payload).toString('hex')).to.equal(c.frame_seq_minus_1);
  });

  it('rpc_ping_seq_5_crc32c: after CRC32C is negotiated frames carry CRC32C, and CRC32 readers refuse them', () => {
    const c = cDerived('rpc_ping_seq_5_crc32c');
    const writer = new FrameWriter({ firstSeq: 5 });
    writer.useCrc32c();
    const frame = writer.frame(hex(c.payload!));
    expect(frame.toString('hex')).to.equal(c.frame);
    expect(crc32c(frame.subarray(0, -4)).toString(16).padStart(8, '0')).to.equal(c.crc32c);
    const reader = new FrameReader({ firstSeq: 5 });
    reader.useCrc32c();
    reader.push(frame);
    expect(reader.next()!.payload.toString('hex')).to.equal(c.payload);
    const crc32Reader = new FrameReader({ firstSeq: 5 });
    crc32Reader.push(frame);
    expect(() => crc32Reader.next()).to.throw('bad checksum');
  });

  it('rpc_nonce_unpadded_official: our default nonce frame has no padding', () => {
    const c = cDerived('rpc_nonce_unpadded_official');
    const nonce = encodeNonce(parseNonce(hex(c.payload!)));
    expect(nonce.toString('hex')).to.equal(c.payload);
    expect(new FrameWriter().frame(nonce).toString('hex')).to.equal(c.frame_seq_minus_2);
  });
});
