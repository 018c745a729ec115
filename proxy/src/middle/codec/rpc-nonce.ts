// RPC_NONCE (§6.4): the first frame in each direction (seq -2, clear text).
//   type(4) || key selector(4) || crypto schema LE32 || timestamp LE32 || nonce(16)
import { ProtocolError } from '../../protocol/errors.js';
import { CryptoSchema, MAX_CLOCK_SKEW_SECONDS, RPC } from './constants.js';

const NONCE_PAYLOAD_LEN = 32;
export const NONCE_LEN = 16;

export interface RpcNonce {
  /** First 4 bytes of the proxy secret: tells the peer which secret we hold. */
  readonly keySelector: Buffer;
  readonly schema: number;
  /** Unix seconds. */
  readonly timestamp: number;
  readonly nonce: Buffer;
}

export function keySelectorOf(secret: Buffer): Buffer {
  return secret.subarray(0, 4);
}

export function encodeNonce(n: Omit<RpcNonce, 'schema'> & { readonly schema?: number }): Buffer {
  if (n.keySelector.length !== 4 || n.nonce.length !== NONCE_LEN) {
    throw new RangeError('RPC_NONCE needs a 4-byte key selector and a 16-byte nonce');
  }
  const out = Buffer.alloc(NONCE_PAYLOAD_LEN);
  out.writeUInt32LE(RPC.NONCE, 0);
  n.keySelector.copy(out, 4);
  out.writeUInt32LE(n.schema ?? CryptoSchema.AES, 8);
  out.writeUInt32LE(n.timestamp >>> 0, 12);
  n.nonce.copy(out, 16);
  return out;
}

/** Structure only; `verifyNonce` applies the checks. Schemas with extra keys or DH are longer and refused. */
export function parseNonce(payload: Buffer): RpcNonce {
  if (payload.length < 4 || payload.readUInt32LE(0) !== RPC.NONCE) {
    throw new ProtocolError('ERR_MP_NONCE', 'expected RPC_NONCE as the first middle-end frame');
  }
  if (payload.length !== NONCE_PAYLOAD_LEN) {
    throw new ProtocolError('ERR_MP_NONCE', `RPC_NONCE of ${payload.length} bytes, expected 32`);
  }
  return {
    keySelector: payload.subarray(4, 8),
    schema: payload.readUInt32LE(8),
    timestamp: payload.readUInt32LE(12),
    nonce: payload.subarray(16, 32),
  };
}

export interface NonceExpectation {
  readonly keySelector: Buffer;
  /**
   * The time the peer's timestamp must be near, in unix seconds: for the proxy checking an answer,
   * the timestamp it sent; for a middle-end checking a proxy, its own clock.
   */
  readonly now: number;
}

/** The checks of the official client and server: AES schema, same secret, clocks within 30 s. */
export function verifyNonce(n: RpcNonce, expect: NonceExpectation): void {
  if (n.schema !== CryptoSchema.AES) {
    throw new ProtocolError(
      'ERR_MP_NONCE_SCHEMA',
      `RPC_NONCE asks for crypto schema ${n.schema}, we speak 1`,
    );
  }
  if (!n.keySelector.equals(expect.keySelector)) {
    throw new ProtocolError(
      'ERR_MP_NONCE_KEY',
      `RPC_NONCE key selector ${n.keySelector.toString('hex')} is not our secret's`,
    );
  }
  if (Math.abs(n.timestamp - expect.now) > MAX_CLOCK_SKEW_SECONDS) {
    throw new ProtocolError(
      'ERR_MP_NONCE_CLOCK',
      `RPC_NONCE timestamp ${n.timestamp} is ${n.timestamp - expect.now} s from ours`,
    );
  }
}
