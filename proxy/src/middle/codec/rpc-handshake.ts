// RPC_HANDSHAKE (§6.6): the first encrypted frame in each direction (seq -1).
//   type(4) || flags LE32 || sender pid(12) || peer pid(12)
// A process id is ip LE32 (host-order IPv4) || port LE16 || pid LE16 || utime LE32.
// RPC_HANDSHAKE_ERROR is type(4) || error code LE32 || sender pid(12).
import { ProtocolError } from '../../protocol/errors.js';
import { ipv4ToHostOrder } from './address.js';
import { HANDSHAKE_FLAG_CRC32C, RPC } from './constants.js';

const HANDSHAKE_PAYLOAD_LEN = 32;
const HANDSHAKE_ERROR_PAYLOAD_LEN = 20;

export interface ProcessId {
  /** IPv4 address as a host-order integer (0 = unknown, or 127.0.0.1 as the official client writes it). */
  readonly ip: number;
  readonly port: number;
  readonly pid: number;
  /** Process start time, unix seconds. */
  readonly utime: number;
}

export function processId(ip: string, port: number, pid: number, utime: number): ProcessId {
  return { ip: ipv4ToHostOrder(ip), port, pid, utime };
}

function encodePid(p: ProcessId, out: Buffer, offset: number): void {
  out.writeUInt32LE(p.ip >>> 0, offset);
  out.writeUInt16LE(p.port & 0xffff, offset + 4);
  out.writeUInt16LE(p.pid & 0xffff, offset + 6);
  out.writeUInt32LE(p.utime >>> 0, offset + 8);
}

function parsePid(b: Buffer, offset: number): ProcessId {
  return {
    ip: b.readUInt32LE(offset),
    port: b.readUInt16LE(offset + 4),
    pid: b.readUInt16LE(offset + 6),
    utime: b.readUInt32LE(offset + 8),
  };
}

/** The 12 ASCII bytes mtprotoproxy and erlang send as both pids; middle-ends accept them. */
export const PLACEHOLDER_PID: ProcessId = parsePid(Buffer.from('IPIPPRPDTIME', 'latin1'), 0);

/** Official `matches_pid`: equal, where a zero field of `pattern` matches anything. */
function pidMatches(actual: ProcessId, pattern: ProcessId): boolean {
  return (
    (pattern.ip === 0 || actual.ip === pattern.ip) &&
    (pattern.port === 0 || actual.port === pattern.port) &&
    (pattern.pid === 0 || actual.pid === pattern.pid) &&
    (pattern.utime === 0 || actual.utime === pattern.utime)
  );
}

export interface RpcHandshake {
  readonly flags: number;
  readonly sender: ProcessId;
  readonly peer: ProcessId;
}

export function encodeHandshake(h: RpcHandshake): Buffer {
  const out = Buffer.alloc(HANDSHAKE_PAYLOAD_LEN);
  out.writeUInt32LE(RPC.HANDSHAKE, 0);
  out.writeUInt32LE(h.flags >>> 0, 4);
  encodePid(h.sender, out, 8);
  encodePid(h.peer, out, 20);
  return out;
}

export function encodeHandshakeError(errorCode: number, sender: ProcessId): Buffer {
  const out = Buffer.alloc(HANDSHAKE_ERROR_PAYLOAD_LEN);
  out.writeUInt32LE(RPC.HANDSHAKE_ERROR, 0);
  out.writeInt32LE(errorCode, 4);
  encodePid(sender, out, 8);
  return out;
}

/** Structure only. An RPC_HANDSHAKE_ERROR from the peer becomes ERR_MP_HANDSHAKE_REFUSED. */
export function parseHandshake(payload: Buffer): RpcHandshake {
  const type = payload.length >= 4 ? payload.readUInt32LE(0) : undefined;
  if (type === RPC.HANDSHAKE_ERROR && payload.length >= 8) {
    throw new ProtocolError(
      'ERR_MP_HANDSHAKE_REFUSED',
      `middle-end refused the handshake with error ${payload.readInt32LE(4)}`,
    );
  }
  if (type !== RPC.HANDSHAKE) {
    throw new ProtocolError('ERR_MP_HANDSHAKE', 'expected RPC_HANDSHAKE as the first encrypted frame');
  }
  if (payload.length !== HANDSHAKE_PAYLOAD_LEN) {
    throw new ProtocolError('ERR_MP_HANDSHAKE', `RPC_HANDSHAKE of ${payload.length} bytes, expected 32`);
  }
  return { flags: payload.readUInt32LE(4), sender: parsePid(payload, 8), peer: parsePid(payload, 20) };
}

export interface HandshakeResult {
  /** Both sides asked for CRC32C: every later frame in both directions uses it. */
  readonly crc32c: boolean;
}

/**
 * The proxy's checks on the middle-end's answer (official `tcp_rpcc_process_handshake_packet`
 * with IGNORE_PID, as the official proxy runs it): no low flag bits, our own pid echoed as peer,
 * CRC32C only if we asked for it.
 */
export function verifyHandshakeAnswer(answer: RpcHandshake, ours: RpcHandshake): HandshakeResult {
  if ((answer.flags & 0xff) !== 0) {
    throw new ProtocolError('ERR_MP_HANDSHAKE_FLAGS', `RPC_HANDSHAKE flags 0x${answer.flags.toString(16)}`);
  }
  if (!pidMatches(ours.sender, answer.peer)) {
    throw new ProtocolError('ERR_MP_HANDSHAKE_PID', 'RPC_HANDSHAKE answer names another process as its peer');
  }
  const asked = (ours.flags & HANDSHAKE_FLAG_CRC32C) !== 0;
  const granted = (answer.flags & HANDSHAKE_FLAG_CRC32C) !== 0;
  if (granted && !asked) {
    throw new ProtocolError('ERR_MP_HANDSHAKE_FLAGS', 'middle-end switched to CRC32C without being asked');
  }
  return { crc32c: granted };
}
