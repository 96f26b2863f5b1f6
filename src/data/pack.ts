// The two cheaper layouts of a collated preference batch, for one forward pass that gives the padded batch's
// log-probs: prefix sharing (each pair as one sequence prompt | chosen | rejected, whose rejected part sees only the
// prompt and itself) and padding-free packing (several sequences per row, each seeing only itself). Pure arrays.
// Not here: the padded batch (collate.ts) or the attention rule itself (models/attention-mask.ts).
// Legend: B pairs, S sequences scored (2B: chosen_i is i, rejected_i is B + i; B when chosen only), rows × T the
// packed tokens, N scored tokens.
import type { SegmentLayout } from '../models/types.js';
import type { PreferenceBatch } from './collate.js';

export interface PackOptions {
  /** One sequence per pair, prompt | chosen | rejected, the prompt computed once for both completions. */
  prefixSharing: boolean;
  /** Several units (sequences, or pairs under prefix sharing) per row, no padding between them; see packRows. */
  paddingFree: boolean;
  /** Only the chosen sequences (the sft loss reads nothing else). */
  chosenOnly?: boolean;
}

/**
 * The scored tokens of a packed batch, ordered by sequence then position as the padded path orders them. Entry n:
 * the hidden state at flat index `index[n]` (r·T + t of the packed rows) predicts `target[n]`, a token of sequence
 * `sequence[n]`, at position `position[n]` of that sequence. The last prompt position appears twice under prefix
 * sharing: it predicts the first chosen and the first rejected token.
 */
export interface ScoredTokens {
  index: Int32Array;
  target: Int32Array;
  sequence: Int32Array;
  position: Int32Array;
}

export interface PackedBatch {
  /** Rows of the forward pass and their length. */
  rows: number;
  T: number;
  /** (rows, T) token ids; 0 on the padding at a row's end. */
  inputIds: Int32Array;
  /** (rows, T) each token's position in its own sequence (a completion continues from its prompt's end); 0 on padding. */
  positions: Int32Array;
  /** Who sees whom (models/types.ts): segment ids (rows, T), −1 on padding, and each segment's prompt. */
  segments: SegmentLayout;
  /** S: sequences scored. */
  sequences: number;
  scored: ScoredTokens;
}

/** One contiguous piece of a row: a prompt or a completion, or a whole sequence when prompts are not shared. */
interface Piece {
  ids: Int32Array;
  /** Index of the piece this one continues (its prompt) within the same unit, or −1. */
  parent: number;
}

/** Units are placed whole in one row; pieces keep their order. */
interface Unit {
  pieces: Piece[];
  length: number;
}

/** Where each piece of each unit landed: its row, its start column, and its segment id. */
interface Placement {
  row: number;
  start: number[];
  segment: number[];
}

/**
 * Packs a padded [chosen; rejected] batch into the chosen layout. Every scored token of the padded batch is scored
 * here at a position with the same position id and the same visible prefix, so the log-probs are the padded path's
 * (up to float rounding of the reordered sums).
 */
export function packPreferenceBatch(batch: PreferenceBatch, o: PackOptions): PackedBatch {
  const { B, T } = batch;
  const sequences = o.chosenOnly ? B : 2 * B;
  // Each padded row r holds prompt (promptLengths[r] ids) ++ completion, then padding: its real length is its mask sum.
  const rowIds = (r: number) => {
    let length = 0;
    for (let t = 0; t < T; t++) length += batch.attentionMask[r * T + t];
    return batch.inputIds.subarray(r * T, r * T + length);
  };
  const units: Unit[] = [];
  // The pieces holding sequence s: [prompt, completion] (the same prompt piece for both sides of a pair when shared).
  const pieceOf: { unit: number; prompt: number; completion: number }[] = [];
  if (o.prefixSharing) {
    for (let i = 0; i < B; i++) {
      const p = batch.promptLengths[i];
      const chosen = rowIds(i);
      const pieces: Piece[] = [{ ids: chosen.subarray(0, p), parent: -1 }, { ids: chosen.subarray(p), parent: 0 }];
      pieceOf[i] = { unit: i, prompt: 0, completion: 1 };
      if (!o.chosenOnly) {
        pieces.push({ ids: rowIds(B + i).subarray(p), parent: 0 });
        pieceOf[B + i] = { unit: i, prompt: 0, completion: 2 };
      }
      units.push({ pieces, length: pieces.reduce((n, x) => n + x.ids.length, 0) });
    }
  } else {
    for (let s = 0; s < sequences; s++) {
      const ids = rowIds(s);
      units.push({ pieces: [{ ids, parent: -1 }], length: ids.length });
      pieceOf[s] = { unit: s, prompt: 0, completion: 0 };
    }
  }

  // Rows: one unit each, or a few rows filled first-fit by decreasing length (packRows).
  const rowOf = o.paddingFree ? packRows(units.map((u) => u.length), sequences * T * T) : units.map((_, u) => u);
  const fill: number[] = [];
  const placed: Placement[] = new Array(units.length);
  let segments = 0;
  const parents: number[] = [];
  units.forEach((unit, u) => {
    const row = rowOf[u];
    while (fill.length <= row) fill.push(0);
    const place: Placement = { row, start: [], segment: [] };
    for (const piece of unit.pieces) {
      place.start.push(fill[row]);
      place.segment.push(segments++);
      parents.push(piece.parent < 0 ? -1 : place.segment[piece.parent]);
      fill[row] += piece.ids.length;
    }
    placed[u] = place;
  });

  const rows = fill.length;
  const width = Math.max(1, ...fill);
  const inputIds = new Int32Array(rows * width);
  const positions = new Int32Array(rows * width);
  const ids = new Int32Array(rows * width).fill(-1);
  units.forEach((unit, u) => {
    const place = placed[u];
    unit.pieces.forEach((piece, k) => {
      const at = place.row * width + place.start[k];
      inputIds.set(piece.ids, at);
      ids.fill(place.segment[k], at, at + piece.ids.length);
      const offset = piece.parent < 0 ? 0 : unit.pieces[piece.parent].ids.length; // a completion continues its prompt
      for (let i = 0; i < piece.ids.length; i++) positions[at + i] = offset + i;
    });
  });

  // Scored tokens, sequence by sequence: token k ≥ max(prompt, 1) of sequence s is predicted at its token k − 1.
  const index: number[] = [];
  const target: number[] = [];
  const sequence: number[] = [];
  const position: number[] = [];
  for (let s = 0; s < sequences; s++) {
    const at = pieceOf[s];
    const unit = units[at.unit];
    const place = placed[at.unit];
    const split = o.prefixSharing ? unit.pieces[at.prompt].ids.length : batch.promptLengths[s];
    // Flat index of token k of sequence s in the packed rows.
    const flat = (k: number) => place.row * width + (o.prefixSharing && k >= split ? place.start[at.completion] + k - split : place.start[at.prompt] + k);
    const tokenAt = (k: number) => inputIds[flat(k)];
    const length = o.prefixSharing ? split + unit.pieces[at.completion].ids.length : unit.length;
    for (let k = Math.max(batch.promptLengths[s], 1); k < length; k++) {
      index.push(flat(k - 1));
      target.push(tokenAt(k));
      sequence.push(s);
      position.push(k - 1);
    }
  }
  return {
    rows, T: width, inputIds, positions, segments: { ids, parents: Int32Array.from(parents) }, sequences,
    scored: { index: Int32Array.from(index), target: Int32Array.from(target), sequence: Int32Array.from(sequence), position: Int32Array.from(position) },
  };
}

/**
 * Attention scores a packed batch may hold, as a multiple of the padded batch's 2B·T²: the attention kernels keep a
 * (T, T) probability table per row and head, so one long row costs quadratic memory. Twice the padded batch's leaves
 * the rows long enough that little padding remains (measured in docs/performance.md).
 */
export const PACKED_SCORE_BUDGET = 2;

/**
 * The row of each unit (`lengths` tokens each) for padding-free packing: the fewest rows k whose scores k·(N/k)² fit
 * in PACKED_SCORE_BUDGET·paddedScores (N tokens in all), then the shortest row length, from max(longest, ⌈N/k⌉) up,
 * at which first-fit by decreasing length fills at most k rows; a unit per row instead when that runs no more tokens
 * (units of equal length). Rows are numbered in order of first use.
 */
export function packRows(lengths: readonly number[], paddedScores: number): number[] {
  const total = lengths.reduce((a, n) => a + n, 0);
  const longest = Math.max(1, ...lengths);
  const wanted = Math.min(Math.max(1, lengths.length), Math.max(1, Math.ceil((total * total) / (PACKED_SCORE_BUDGET * Math.max(1, paddedScores)))));
  const order = lengths.map((_, u) => u).sort((a, b) => lengths[b] - lengths[a] || a - b);
  for (let capacity = Math.max(longest, Math.ceil(total / wanted)); ; capacity += Math.max(1, Math.floor(capacity / 32))) {
    const fill: number[] = [];
    const rowOf = new Array<number>(lengths.length);
    for (const u of order) {
      let row = fill.findIndex((used) => used + lengths[u] <= capacity);
      if (row < 0) row = fill.push(0) - 1;
      fill[row] += lengths[u];
      rowOf[u] = row;
    }
    if (fill.length > wanted) continue;
    // No fewer tokens than a unit per row (equal lengths): keep a unit per row, the shorter rows.
    return fill.length * Math.max(...fill) < lengths.length * longest ? rowOf : lengths.map((_, u) => u);
  }
}
