// Numbers of the middle-proxy RPC protocol (docs/protocol.md §6). Constructor ids are the LE32
// values whose wire bytes constants.json lists; the tests assert every one against that file.

/** RPC constructor ids (official common/rpc-const.h, mtproto/mtproto-common.h). */
export const RPC = {
  NONCE: 0x7acb87aa,
  HANDSHAKE: 0x7682eef5,
  HANDSHAKE_ERROR: 0x6a27beda,
  PROXY_REQ: 0x36cef1ee,
  PROXY_ANS: 0x4403da0d,
  CLOSE_CONN: 0x1fcf425d,
  CLOSE_EXT: 0x5eb634a2,
  SIMPLE_ACK: 0x3bac409b,
  PING: 0x5730a2df,
  PONG: 0x8430eaa7,
} as const;

/** TL constructors inside the `extra` section of RPC_PROXY_REQ (§6.8). */
export const TL_PROXY_TAG = 0xdb1e26ae;
export const TL_HTTP_QUERY_INFO = 0xd45ab381;

/** RPC_NONCE crypto schemas (§6.4). Only AES is spoken here. */
export const CryptoSchema = {
  NONE: 0,
  AES: 1,
  AES_EXT: 2,
  AES_DH: 3,
} as const;

/** RPC_HANDSHAKE flag asking for CRC32C frames (official RPCF_USE_CRC32C, §6.3). */
export const HANDSHAKE_FLAG_CRC32C = 0x800;

/** RPC_PROXY_REQ flag bits (official RPC_F_*, §6.8). */
export const ProxyReqFlag = {
  NOT_ENCRYPTED: 0x00000002,
  HTTP_QUERY_INFO: 0x00000004,
  HAS_AD_TAG: 0x00000008,
  MAGIC: 0x00001000,
  EXTMODE1: 0x00010000,
  EXTMODE2: 0x00020000,
  PAD: 0x08000000,
  DROPPED: 0x10000000,
  INTERMEDIATE: 0x20000000,
  ABRIDGED: 0x40000000,
  QUICKACK: 0x80000000,
} as const;

/** "Full" transport on the middle-end connection (§6.3). */
export const FullTransport = {
  /** len || seq before the payload, crc after it. */
  OVERHEAD: 12,
  /** A length word of 4 is a padding word `04 00 00 00`, skipped by readers. */
  PADDING_WORD: 4,
  CBC_BLOCK: 16,
  /** Smallest frame the official reader accepts; mtprotoproxy takes 12 (an empty payload). */
  MIN_FRAME_LEN: 16,
  /** Largest frame mtprotoproxy accepts; the official RPC client has no limit of its own. */
  MAX_FRAME_LEN: 0x1000000,
  /** RPC_NONCE is frame -2, RPC_HANDSHAKE -1, then 0, 1, 2, ... in each direction. */
  FIRST_SEQ: -2,
} as const;

/** The middle-end and the official client refuse a nonce timestamp further off than this (§6.4, §6.11). */
export const MAX_CLOCK_SKEW_SECONDS = 30;
