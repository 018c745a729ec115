import { expect } from 'chai';
import {
  PROXY_CONFIG_URL,
  PROXY_CONFIG_V6_URL,
  PROXY_SECRET_URL,
} from '../../../proxy/src/config/telegram-urls.js';
import {
  BUILTIN_MIDDLE_PROXIES_V4,
  BUILTIN_MIDDLE_PROXIES_V6,
  builtinProxyConfig,
} from '../../../proxy/src/middle/codec/builtin-config.js';
import {
  CryptoSchema,
  FullTransport,
  HANDSHAKE_FLAG_CRC32C,
  ProxyReqFlag,
  RPC,
  TL_HTTP_QUERY_INFO,
  TL_PROXY_TAG,
} from '../../../proxy/src/middle/codec/constants.js';
import type { HostPort } from '../../../proxy/src/middle/codec/proxy-config.js';
import { targetsForDc } from '../../../proxy/src/middle/codec/proxy-config.js';
import { hex, loadVectors } from '../../support/vectors.js';

interface Constants {
  rpc: Record<string, string | number>;
  proxy_req_flags: Record<string, string>;
  full_transport: {
    cbc_block: number;
    padding_word: string;
    min_frame_len: number;
    max_frame_len: number;
    start_seq: number;
  };
  middle_proxy_builtin_v4: Record<string, string[]>;
  middle_proxy_builtin_v6: Record<string, string[]>;
  proxy_secret_urls: string[];
}

const c = loadVectors<Constants>('constants.json');
const wire = (value: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  return b.toString('hex');
};

function tableOf(entries: Record<string, string[]>): Record<string, HostPort[]> {
  const out: Record<string, HostPort[]> = {};
  for (const [id, list] of Object.entries(entries)) {
    out[id] = list.map((s) => {
      const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(s)!;
      return { host: m[1]!, port: Number(m[2]) };
    });
  }
  return out;
}

function recordOf(map: ReadonlyMap<number, readonly HostPort[]>): Record<string, readonly HostPort[]> {
  return Object.fromEntries([...map].map(([id, list]) => [String(id), list]));
}

describe('middle-proxy constants (constants.json)', () => {
  it('RPC constructor ids have the wire bytes of the official headers', () => {
    const ours: Record<string, number> = {
      RPC_NONCE: RPC.NONCE,
      RPC_HANDSHAKE: RPC.HANDSHAKE,
      RPC_HANDSHAKE_ERROR: RPC.HANDSHAKE_ERROR,
      RPC_PROXY_REQ: RPC.PROXY_REQ,
      RPC_PROXY_ANS: RPC.PROXY_ANS,
      RPC_CLOSE_CONN: RPC.CLOSE_CONN,
      RPC_CLOSE_EXT: RPC.CLOSE_EXT,
      RPC_SIMPLE_ACK: RPC.SIMPLE_ACK,
      RPC_PING: RPC.PING,
      RPC_PONG: RPC.PONG,
      TL_PROXY_TAG,
      TL_HTTP_QUERY_INFO,
    };
    for (const [name, value] of Object.entries(ours)) expect(wire(value), name).to.equal(c.rpc[name]);
    expect(CryptoSchema).to.deep.equal({
      NONE: c.rpc.RPC_CRYPTO_NONE,
      AES: c.rpc.RPC_CRYPTO_AES,
      AES_EXT: c.rpc.RPC_CRYPTO_AES_EXT,
      AES_DH: c.rpc.RPC_CRYPTO_AES_DH,
    });
    expect(HANDSHAKE_FLAG_CRC32C).to.equal(Number(c.rpc.RPCF_USE_CRC32C_handshake_flag));
  });

  it('RPC_PROXY_REQ flag bits', () => {
    const expected = Object.fromEntries(Object.entries(c.proxy_req_flags).map(([k, v]) => [k, Number(v)]));
    const ours: Record<string, number> = { ...ProxyReqFlag, MAGIC_EXT_CONN: ProxyReqFlag.MAGIC };
    delete ours.MAGIC;
    expect(ours).to.deep.equal(expected);
  });

  it('full-transport constants; our minimum frame is the official 16, not the reference 12', () => {
    const t = c.full_transport;
    expect(FullTransport.CBC_BLOCK).to.equal(t.cbc_block);
    expect(wire(FullTransport.PADDING_WORD)).to.equal(hex(t.padding_word).toString('hex'));
    expect(FullTransport.MAX_FRAME_LEN).to.equal(t.max_frame_len);
    expect(FullTransport.FIRST_SEQ).to.equal(t.start_seq);
    expect(FullTransport.OVERHEAD).to.equal(t.min_frame_len);
    expect(FullTransport.MIN_FRAME_LEN).to.equal(t.min_frame_len + 4);
  });

  it('built-in middle-end tables equal the reference tables', () => {
    expect(recordOf(BUILTIN_MIDDLE_PROXIES_V4)).to.deep.equal(tableOf(c.middle_proxy_builtin_v4));
    expect(recordOf(BUILTIN_MIDDLE_PROXIES_V6)).to.deep.equal(tableOf(c.middle_proxy_builtin_v6));
  });

  it('the built-in config sends unknown DCs to DC 2', () => {
    const v4 = builtinProxyConfig(4);
    expect(targetsForDc(v4, 10002)).to.deep.equal(BUILTIN_MIDDLE_PROXIES_V4.get(2));
    expect(targetsForDc(builtinProxyConfig(6), -4)).to.deep.equal(BUILTIN_MIDDLE_PROXIES_V6.get(-4));
  });

  it("Telegram's URLs for the proxy secret and the two lists", () => {
    expect([PROXY_SECRET_URL, PROXY_CONFIG_URL, PROXY_CONFIG_V6_URL]).to.deep.equal(c.proxy_secret_urls);
  });
});
