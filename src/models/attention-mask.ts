// Which keys each query may see, and each token's position id, for one forward call: pure functions of the padding
// mask (B, Tk) over all keys (cached ones first), the number of cached keys and this call's length, or of a segment
// layout (several sequences per row). Not the attention itself (engine/ops/nn.ts).
// Legend: B batch, Tq this call's tokens, Tk = cached + Tq keys; T = Tq = Tk for a segment layout.
import { ShapeError } from '../engine/errors.js';
import type { SegmentLayout } from './types.js';

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

/** Throws unless layout covers (B, T) tokens with segment ids in [−1, parents.length) and acyclic parents. */
export function checkSegments(op: string, layout: SegmentLayout, b: number, t: number): void {
  const { ids, parents } = layout;
  if (ids.length !== b * t) throw new ShapeError(op, `segments.ids must hold B·T = ${b}·${t} = ${b * t} ids, got ${ids.length}`);
  const bad = ids.findIndex((s) => s < -1 || s >= parents.length);
  if (bad >= 0) throw new ShapeError(op, `segments.ids[${bad}] = ${ids[bad]} is not −1 (padding) or a segment in [0, ${parents.length})`);
  parents.forEach((p, s) => {
    if (p < -1 || p >= parents.length) throw new ShapeError(op, `segments.parents[${s}] = ${p} is not −1 or a segment in [0, ${parents.length})`);
    for (let a = p, depth = 0; a >= 0; a = parents[a]) {
      if (++depth > parents.length) throw new ShapeError(op, `segments.parents has a cycle through segment ${s}`);
    }
  });
}

/**
 * (B, T, T) 0/1 mask of a segment layout: query i sees key j iff j ≤ i and segment ids[j] is ids[i] or an ancestor of
 * it (SegmentLayout). A padding query (−1) sees nothing; its output is zero and never read.
 */
export function segmentMask(layout: SegmentLayout, b: number, t: number): Uint8Array {
  const { ids, parents } = layout;
  const mask = new Uint8Array(b * t * t);
  const visible = new Uint8Array(parents.length); // the current query's segment and its ancestors
  const mark = (s: number, on: number) => { for (let a = s; a >= 0; a = parents[a]) visible[a] = on; };
  for (let bi = 0; bi < b; bi++) {
    let current = -1;
    for (let i = 0; i < t; i++) {
      const s = ids[bi * t + i];
      if (s !== current) {
        mark(current, 0);
        mark(s, 1);
        current = s;
      }
      if (s < 0) continue;
      const row = (bi * t + i) * t;
      if (i > 0 && ids[bi * t + i - 1] === s) {
        mask.copyWithin(row, row - t, row - t + i); // the previous query's keys, plus this one
        mask[row + i] = 1;
        continue;
      }
      for (let j = 0; j <= i; j++) {
        const k = ids[bi * t + j];
        mask[row + j] = k >= 0 ? visible[k] : 0;
      }
    }
    mark(current, 0);
  }
  return mask;
}

/**
 * (B, T) position ids under a (B, T, T) visibility mask: the keys each token sees, minus 1, so each sequence of a
 * packed row restarts at 0 and a completion continues from the end of its prompt, as in its own row. Padding gets 0.
 */
export function visiblePositions(mask: Uint8Array, b: number, t: number): Int32Array {
  const positions = new Int32Array(b * t);
  for (let r = 0; r < b * t; r++) {
    let count = 0;
    for (let j = 0; j < t; j++) count += mask[r * t + j];
    positions[r] = Math.max(count - 1, 0);
  }
  return positions;
}
