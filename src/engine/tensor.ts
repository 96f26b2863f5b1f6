// Tensor: a shape, a dtype and a reference-counted storage (a contiguous row-major typed array that every backend
// reads and writes directly). Also the engine-wide state: the active backend, grad mode and memory scopes.
// The ops live in ops/*.ts; autograd lives in autograd.ts.
import type { AnyArray, Backend, FloatArray } from './backend.js';
import { dtypeOf, isFloatArray, type DType } from './dtype.js';
import { DisposedError, DTypeError, ShapeError, fmtShape } from './errors.js';
import type { GraphNode } from './graph.js';
import { acquire, release } from './storage.js';

// ------------------------------------------------------------------------------------------------ backend
let activeBackend: Backend | null = null;

/** The backend every op runs on. Set once at start-up (dpo-ts's index does it; see backends/index.ts). */
export function getBackend(): Backend {
  if (!activeBackend) throw new Error('dpo-ts: no backend is set; import from "dpo-ts" (or call initBackend()) before using tensors');
  return activeBackend;
}

export function setBackend(b: Backend): void {
  activeBackend = b;
}

// ------------------------------------------------------------------------------------------------ grad mode
let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording the autograd graph (inference, reference models, optimizer updates). */
export function noGrad<R>(fn: () => R): R {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

// ------------------------------------------------------------------------------------------------ storage
/** A typed array shared by a tensor and its views (reshape, detach); released to the pool when the last one goes. */
class Storage {
  refs = 1;
  constructor(public array: AnyArray | null) {}
}

// ------------------------------------------------------------------------------------------------ scopes
const scopes: Set<Tensor>[] = [];

/**
 * Runs fn and disposes every tensor created inside it, except the tensors it returns (found in a returned Tensor,
 * array or plain object, one level deep) and tensors passed to keep(). Returned tensors move to the enclosing scope.
 */
export function scope<R>(fn: () => R): R {
  const mine = new Set<Tensor>();
  scopes.push(mine);
  let result: R;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  const parent = scopes[scopes.length - 1];
  for (const t of mine) {
    if (survivors.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

function collectTensors(x: unknown, into: Set<Tensor>): void {
  if (x instanceof Tensor) into.add(x);
  else if (Array.isArray(x)) for (const v of x) { if (v instanceof Tensor) into.add(v); }
  else if (x && typeof x === 'object') for (const v of Object.values(x)) { if (v instanceof Tensor) into.add(v); }
}

// ------------------------------------------------------------------------------------------------ Tensor
let nextId = 0;
let backwardImpl: ((root: Tensor, grad?: Tensor) => void) | null = null;

/** Called once by autograd.ts, which cannot be imported here without a cycle. */
export function registerBackward(fn: (root: Tensor, grad?: Tensor) => void): void {
  backwardImpl = fn;
}

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly size: number;
  /** Whether gradients flow to this tensor. Set on leaves (parameters); ops set it on their outputs. */
  requiresGrad: boolean;
  /** The accumulated gradient of a leaf after backward(). */
  grad: Tensor | null = null;
  /** The op that produced this tensor, when it was recorded for autograd. */
  node: GraphNode | null = null;
  private storage: Storage;

  constructor(data: AnyArray, shape: readonly number[], requiresGrad = false, storage?: Storage) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new ShapeError('tensor', `bad shape ${fmtShape(shape)}: dimensions must be integers ≥ 0`);
    if (size !== data.length) throw new ShapeError('tensor', `shape ${fmtShape(shape)} holds ${size} elements but the data has ${data.length}`);
    this.shape = Object.freeze(shape.slice());
    this.size = size;
    this.dtype = dtypeOf(data);
    this.requiresGrad = requiresGrad;
    this.storage = storage ?? new Storage(data);
    scopes[scopes.length - 1]?.add(this);
  }

  /** The contiguous row-major data. Throws once the tensor is disposed. */
  get data(): AnyArray {
    const a = this.storage.array;
    if (!a) throw new DisposedError(`tensor#${this.id}`);
    return a;
  }

  /** The data as a float array; throws a DTypeError for int32 tensors. */
  floatData(op = 'op'): FloatArray {
    const a = this.data;
    if (!isFloatArray(a)) throw new DTypeError(op, `expected a float32 or float64 tensor, got int32 of shape ${fmtShape(this.shape)}`);
    return a;
  }

  get rank(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this.released || this.storage.array === null;
  }

  private released = false;

  /** A tensor with the same data and a new shape of equal size, sharing storage (no copy). */
  view(shape: readonly number[]): Tensor {
    this.data; // throws if disposed
    this.storage.refs++;
    return new Tensor(this.data, shape, false, this.storage);
  }

  /** Releases the storage reference; the buffer is recycled once no view uses it. Safe to call twice. */
  dispose(): void {
    if (this.released) return;
    this.released = true;
    this.node = null;
    for (const s of scopes) s.delete(this);
    const st = this.storage;
    st.refs--;
    if (st.refs === 0 && st.array) {
      release(st.array);
      st.array = null;
    }
  }

  /** Removes this tensor from every scope, so scope() will not dispose it. Returns this. */
  keep(): this {
    for (const s of scopes) s.delete(this);
    return this;
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new ShapeError('item', `needs a one-element tensor, got shape ${fmtShape(this.shape)}`);
    return this.data[0];
  }

  /** A plain copy of the data. */
  toArray(): number[] {
    return Array.from(this.data);
  }

  /** A tensor sharing this data with no autograd history. */
  detach(): Tensor {
    const t = this.view(this.shape);
    t.requiresGrad = false;
    return t;
  }

  /** Backpropagates from this tensor (a scalar, unless grad is given) into the .grad of every leaf. See autograd.ts. */
  backward(grad?: Tensor): void {
    if (!backwardImpl) throw new Error('dpo-ts: autograd is not loaded; import from "dpo-ts" or "engine/index.js"');
    backwardImpl(this, grad);
  }

  /** Marks this tensor as a leaf that receives gradients. Returns this. */
  requireGrad(flag = true): this {
    this.requiresGrad = flag;
    return this;
  }

  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

// ------------------------------------------------------------------------------------------------ creation
/** An uninitialised (recycled) tensor: every element must be written before it is read. */
export function empty(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return new Tensor(acquire(dtype, size, false), shape);
}

export function zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return new Tensor(acquire(dtype, size, true), shape);
}

export function full(shape: readonly number[], value: number, dtype: DType = 'float32'): Tensor {
  const t = empty(shape, dtype);
  t.data.fill(value);
  return t;
}

export function ones(shape: readonly number[], dtype: DType = 'float32'): Tensor {
  return full(shape, 1, dtype);
}

/** A tensor from nested-free data: a flat array of numbers (or a typed array, copied) and a shape. */
export function tensor(values: ArrayLike<number>, shape?: readonly number[], dtype: DType = 'float32'): Tensor {
  const t = empty(shape ?? [values.length], dtype);
  if (t.size !== values.length) throw new ShapeError('tensor', `shape ${fmtShape(t.shape)} holds ${t.size} elements but ${values.length} values were given`);
  const d = t.data;
  for (let i = 0; i < values.length; i++) d[i] = values[i];
  return t;
}

export function scalar(value: number, dtype: DType = 'float32'): Tensor {
  return tensor([value], [], dtype);
}

/** 0, 1, …, n−1. */
export function arange(n: number, dtype: DType = 'int32'): Tensor {
  const t = empty([n], dtype);
  for (let i = 0; i < n; i++) t.data[i] = i;
  return t;
}
