// The official proxy's checks on a client packet before it becomes an RPC_PROXY_REQ (§3.5,
// official forward_mtproto_packet): at least 28 bytes and whole words; an unencrypted packet
// (auth_key_id zero) must be one of the four key-exchange calls with a sane inner length; an
// encrypted one must hold a full encrypted-message header (56 bytes). Failing packets are dropped,
// the client is not closed (it may be probing, or simply wrong once).

export type ClientPacketCheck = 'ok' | 'too-short' | 'unaligned' | 'bad-inner-length' | 'not-key-exchange';

/** auth_key_id(8) || msg_id(8) || length(4) || function(4) || 4 more: the header the checks read. */
const MIN_PACKET = 28;
/** offsetof(struct encrypted_message, message): key id, msg key, salt, session, msg id, seq, length. */
const MIN_ENCRYPTED = 56;
const INNER_LENGTH_AT = 16;
const FUNCTION_AT = 20;
/** The inner message must hold at least the function id and the 16-byte nonce. */
const MIN_INNER = 20;

/** Key-exchange calls a client may send before it has a key (official CODE_* values). */
const KEY_EXCHANGE_FUNCTIONS: ReadonlySet<number> = new Set([
  0x60469778, // req_pq
  0xbe7e8ef1, // req_pq_multi
  0xd712e4be, // req_DH_params
  0xf5045f1f, // set_client_DH_params
]);

export function checkClientPacket(packet: Buffer): ClientPacketCheck {
  const len = packet.length;
  if (len < MIN_PACKET) return 'too-short';
  if (len % 4 !== 0) return 'unaligned';
  if (packet.readUInt32LE(0) !== 0 || packet.readUInt32LE(4) !== 0) {
    return len < MIN_ENCRYPTED ? 'too-short' : 'ok';
  }
  const inner = packet.readInt32LE(INNER_LENGTH_AT);
  if (inner < MIN_INNER || inner + 20 > len) return 'bad-inner-length';
  return KEY_EXCHANGE_FUNCTIONS.has(packet.readUInt32LE(FUNCTION_AT)) ? 'ok' : 'not-key-exchange';
}
