// Buffer recycling. Disposed tensors hand their typed arrays back here, and new tensors of the same dtype and
// length reuse them, so a training loop that disposes its intermediates (see scope.ts) runs in flat memory and
// skips the cost of allocating and zeroing fresh buffers. Recycled buffers are NOT zeroed: ask for `zeroed`.
import type { AnyArray } from './backend.js';
import { allocArray, bytesPerElement, dtypeOf, type DType } from './dtype.js';

const MAX_POOLED_BYTES = 1 << 30; // beyond this, released buffers are left to the garbage collector
const pools = new Map<string, AnyArray[]>();
let pooledBytes = 0;
let liveBytes = 0;
let peakLiveBytes = 0;

export function acquire(dtype: DType, size: number, zeroed: boolean): AnyArray {
  const bytes = size * bytesPerElement(dtype);
  liveBytes += bytes;
  if (liveBytes > peakLiveBytes) peakLiveBytes = liveBytes;
  const list = pools.get(`${dtype}:${size}`);
  const recycled = list?.pop();
  if (recycled) {
    pooledBytes -= bytes;
    if (zeroed) recycled.fill(0);
    return recycled;
  }
  return allocArray(dtype, size);
}

export function release(a: AnyArray): void {
  const dtype = dtypeOf(a);
  const bytes = a.length * bytesPerElement(dtype);
  liveBytes -= bytes;
  if (a.length === 0 || pooledBytes + bytes > MAX_POOLED_BYTES) return;
  const key = `${dtype}:${a.length}`;
  let list = pools.get(key);
  if (!list) pools.set(key, (list = []));
  list.push(a);
  pooledBytes += bytes;
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
