// TL "string"/"bytes" (§6.8): up to 253 bytes as one length byte, longer as `fe` + LE24 length;
// then the bytes, then zeros up to a multiple of 4 counting the length prefix.
import { ProtocolError } from '../../protocol/errors.js';

const LONG_MARKER = 0xfe;
const SHORT_MAX = 253;
const LONG_MAX = 0xffffff;

export function encodeTlString(value: Buffer): Buffer {
  if (value.length > LONG_MAX) throw new RangeError(`TL string of ${value.length} bytes is too long`);
  const prefix = value.length <= SHORT_MAX ? 1 : 4;
  const out = Buffer.alloc((prefix + value.length + 3) & ~3);
  if (prefix === 1) out[0] = value.length;
  else out.writeUInt32LE(LONG_MARKER | (value.length << 8), 0);
  value.copy(out, prefix);
  return out;
}

/** The string starting at `offset` and the offset just after its padding. */
export function parseTlString(b: Buffer, offset: number): { value: Buffer; end: number } {
  if (offset >= b.length) throw new ProtocolError('ERR_MP_TL_STRING', 'TL string truncated');
  let length = b[offset]!;
  let prefix = 1;
  if (length === LONG_MARKER) {
    if (offset + 4 > b.length) throw new ProtocolError('ERR_MP_TL_STRING', 'TL string truncated');
    length = b.readUIntLE(offset + 1, 3);
    prefix = 4;
  } else if (length > SHORT_MAX) {
    throw new ProtocolError('ERR_MP_TL_STRING', `TL string length byte ${length}`);
  }
  const end = offset + ((prefix + length + 3) & ~3);
  if (end > b.length) throw new ProtocolError('ERR_MP_TL_STRING', 'TL string truncated');
  return { value: b.subarray(offset + prefix, offset + prefix + length), end };
}
