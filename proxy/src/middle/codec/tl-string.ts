// TL "string"/"bytes" (§6.8): up to 253 bytes as one length byte, longer as `fe` + LE24 length;
// then the bytes, then zeros up to a multiple of 4 counting the length prefix.
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
