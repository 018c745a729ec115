// CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the checksum middle-end frames switch to
// once both handshakes carry flag 0x800 (§6.3; official common/crc32c.c). Same calling convention
// as node:zlib crc32: pass the previous result to continue over more data.

const POLY = 0x82f63b78;

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32c(data: Uint8Array, previous = 0): number {
  let c = ~previous >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
