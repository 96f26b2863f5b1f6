// Buffer recycling. Disposed tensors hand their typed arrays back here, and new tensors of the same dtype and size
// class reuse them, so a training loop that disposes its intermediates (see scope.ts) runs in flat memory and skips
// the cost of allocating and zeroing fresh buffers. Recycled buffers are NOT zeroed: ask for `zeroed`.
// Size classes: above SMALL elements a buffer is allocated with its length rounded up to the next of 8 steps per
// power of two (at most 1/8 = 12.5% unused), and the tensor gets a view of the length it asked for. Batches whose
// shapes change every step (real data: variable lengths, packing) then reuse each other's buffers instead of
// allocating afresh; an exact-length pool missed every time there.
import type { AnyArray } from './backend.js';
import { allocArray, bytesPerElement, dtypeOf, type DType } from './dtype.js';

const MAX_POOLED_BYTES = 1 << 30; // beyond this, released buffers are left to the garbage collector
const SMALL = 4096; // elements: below this, lengths are exact (rounding would waste more than it saves)
const pools = new Map<string, AnyArray[]>();
let pooledBytes = 0;
let liveBytes = 0;
let peakLiveBytes = 0;

/** The allocated length of a buffer of `size` elements: exact up to SMALL, else the next of 8 steps per octave. */
export function capacityFor(size: number): number {
  if (size <= SMALL) return size;
  const step = 2 ** (Math.floor(Math.log2(size)) - 3);
  return Math.ceil(size / step) * step;
}

/** A view of the first `size` elements (the array itself when the capacity is exact). */
const viewOf = (full: AnyArray, size: number): AnyArray => (full.length === size ? full : full.subarray(0, size));

export function acquire(dtype: DType, size: number, zeroed: boolean): AnyArray {
  liveBytes += size * bytesPerElement(dtype);
  if (liveBytes > peakLiveBytes) peakLiveBytes = liveBytes;
  const capacity = capacityFor(size);
  const recycled = pools.get(`${dtype}:${capacity}`)?.pop();
  if (recycled) {
    pooledBytes -= capacity * bytesPerElement(dtype);
    const view = viewOf(recycled, size);
    if (zeroed) view.fill(0);
    return view;
  }
  return viewOf(allocArray(dtype, capacity), size);
}

export function release(a: AnyArray): void {
  const dtype = dtypeOf(a);
  const bpe = bytesPerElement(dtype);
  liveBytes -= a.length * bpe;
  const capacity = capacityFor(a.length);
  // Only whole buffers of the class's capacity go back: views this pool made, or arrays of exactly that length.
  if (a.length === 0 || a.byteOffset !== 0 || a.buffer.byteLength !== capacity * bpe) return;
  if (pooledBytes + capacity * bpe > MAX_POOLED_BYTES) return;
  const key = `${dtype}:${capacity}`;
  let list = pools.get(key);
  if (!list) pools.set(key, (list = []));
  list.push(a.length === capacity ? a : (new (a.constructor as new (b: ArrayBufferLike, o: number, n: number) => AnyArray)(a.buffer, 0, capacity)));
  pooledBytes += capacity * bpe;
}

/** Bytes held by tensors that have not been disposed (tensors dropped without dispose() still count). */
export function memoryStats(): { liveBytes: number; peakLiveBytes: number; pooledBytes: number } {
  return { liveBytes, peakLiveBytes, pooledBytes };
}

export function resetPeakMemory(): void {
  peakLiveBytes = liveBytes;
}

/** Drops every pooled buffer (for example before measuring memory). */
export function clearPool(): void {
  pools.clear();
  pooledBytes = 0;
}
