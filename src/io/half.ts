// 16-bit float conversions for checkpoint I/O: IEEE 754 binary16 (F16) and bfloat16 (BF16) to float32, and float32
// to bfloat16 with round-to-nearest-even. Pure bit arithmetic on Uint16/Uint32 arrays; no tensors, no files.
// Layouts: F16 = 1 sign, 5 exponent (bias 15), 10 fraction bits; BF16 = the top 16 bits of a float32.

/** The float value of one binary16 bit pattern (zeros, subnormals, ±∞ and NaN included). */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // ±0 and subnormals: 0.fraction × 2^-14
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

let f16Table: Uint32Array | null = null;

/** float32 bit patterns of all 65,536 binary16 values (256 KiB, built on first use). NaNs keep sign and payload. */
function f16ToF32BitsTable(): Uint32Array {
  if (f16Table) return f16Table;
  const values = new Float32Array(65536);
  const bits = new Uint32Array(values.buffer);
  for (let h = 0; h < 65536; h++) {
    const isNaN16 = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN16) bits[h] = (((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0;
    else values[h] = f16BitsToNumber(h); // every binary16 value is exact in float32
  }
  return (f16Table = bits);
}

/** out[i] = float32 value of binary16 src[i]. Exact: float32 holds every binary16 value. */
export function decodeF16(src: Uint16Array, out: Float32Array): void {
  const table = f16ToF32BitsTable();
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) outBits[i] = table[src[i]];
}

/** out[i] = float32 value of bfloat16 src[i] (a 16-bit left shift; exact, NaN payloads kept). */
export function decodeBF16(src: Uint16Array, out: Float32Array): void {
  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) outBits[i] = src[i] << 16;
}

/**
 * out[i] = bfloat16 bits of float32 src[i], rounded to nearest, ties to even. NaNs stay NaN (sign and top payload bits
 * kept, quiet bit set) instead of rounding into ±∞; finite values past the bf16 range round to ±∞ as IEEE says.
 */
export function encodeBF16(src: Float32Array, out: Uint16Array): void {
  const srcBits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const b = srcBits[i];
    if ((b & 0x7fffffff) > 0x7f800000) out[i] = (b >>> 16) | 0x0040;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16; // add half an ulp (minus one on even) and truncate
  }
}

/** The bfloat16 bit pattern of one number (via float32). */
export function numberToBF16Bits(x: number): number {
  const out = new Uint16Array(1);
  encodeBF16(Float32Array.of(x), out);
  return out[0];
}
