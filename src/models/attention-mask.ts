// Which keys each query may see, and each token's position id, for one forward call: pure functions of the padding
// mask (B, Tk) over all keys (cached ones first), the number of cached keys and this call's length. Not the attention
// itself (engine/ops/nn.ts). Legend: B batch, Tq this call's tokens, Tk = cached + Tq keys.

/**
 * (B, Tq, Tk) 0/1 mask: query i sits at key index Tk − Tq + i and sees key j iff j ≤ Tk − Tq + i and keyMask[b, j] ≠ 0.
 * Returns null when there is no keyMask or every key is real: the engine's own causal rule is then the same, and faster.
 */
export function causalPaddingMask(keyMask: Uint8Array | undefined, b: number, tq: number, tk: number): Uint8Array | null {
  if (!keyMask || keyMask.every((m) => m !== 0)) return null;
  if (keyMask.length !== b * tk) throw new Error(`causalPaddingMask: keyMask holds ${keyMask.length} values, expected B·Tk = ${b}·${tk}`);
  const mask = new Uint8Array(b * tq * tk);
  for (let bi = 0; bi < b; bi++) {
    for (let i = 0; i < tq; i++) {
      const row = (bi * tq + i) * tk;
      const last = tk - tq + i; // the query's own key index
      for (let j = 0; j <= last; j++) mask[row + j] = keyMask[bi * tk + j] !== 0 ? 1 : 0;
    }
  }
  return mask;
}

/**
 * (B, Tq) position ids of this call's tokens. With a keyMask: cumsum(keyMask) − 1 clamped at 0, read at the last Tq
 * keys, as HF's generate() does for left padding, so every row's first real token is at 0 (padding is clamped to 0;
 * its position never matters). Without one: past, past + 1, … for every row.
 */
export function defaultPositions(keyMask: Uint8Array | undefined, b: number, tq: number, past: number): Int32Array {
  const tk = past + tq;
  const positions = new Int32Array(b * tq);
  for (let bi = 0; bi < b; bi++) {
    let count = 0;
    for (let j = 0; j < tk; j++) {
      count += keyMask ? (keyMask[bi * tk + j] !== 0 ? 1 : 0) : 1;
      if (j >= past) positions[bi * tq + j - past] = Math.max(count - 1, 0);
    }
  }
  return positions;
}
