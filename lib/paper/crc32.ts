/**
 * CRC-32 (zlib's: reflected 0xEDB88320, initial and final complement) over a range of a byte
 * array, slicing by 8. `zlib.crc32` takes a whole Buffer or typed array, so checksumming a record
 * that sits inside the journal's pending buffer cost a Uint8Array view per record plus a call into
 * C++ each; for the ~200-byte records the broker seals, the call and the view cost more than the
 * arithmetic. Gives `zlib.crc32(bytes.subarray(start, end), init)` exactly (a spec checks it).
 */

/** Eight 256-entry tables: table t maps a byte to its CRC contribution t bytes further back. */
const TABLE = new Int32Array(256 * 8);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = TABLE[n]!;
  for (let t = 1; t < 8; t++) {
    c = TABLE[c & 0xff]! ^ (c >>> 8);
    TABLE[t * 256 + n] = c;
  }
}

/** Continues the CRC `init` (0 to start one) over `bytes[start, end)`; an unsigned 32-bit result. */
export function crc32Range(bytes: Uint8Array, start: number, end: number, init = 0): number {
  const t = TABLE;
  let c = ~init;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const low = c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    c =
      t[1792 + (low & 0xff)]! ^
      t[1536 + ((low >>> 8) & 0xff)]! ^
      t[1280 + ((low >>> 16) & 0xff)]! ^
      t[1024 + (low >>> 24)]! ^
      t[768 + bytes[i + 4]!]! ^
      t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^
      t[bytes[i + 7]!]!;
  }
  for (; i < end; i++) c = t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** Continues the CRC `init` over one more byte. */
export function crc32Byte(init: number, byte: number): number {
  const c = ~init;
  return ~(TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8)) >>> 0;
}
