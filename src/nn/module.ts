// Module: a tree of named parameters, as torch.nn.Module. Parameter names are the checkpoint's own dotted names
// (`transformer.h.0.attn.c_attn.weight`), so loading and saving need no mapping table.
import { ShapeError, fmtShape } from '../engine/errors.js';
import type { Tensor } from '../engine/tensor.js';

export abstract class Module {
  private readonly ownParams = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Registers a parameter (a leaf that requires grad) under `name` and returns it. */
  protected param(name: string, t: Tensor): Tensor {
    this.ownParams.set(name, t.keep().requireGrad());
    return t;
  }

  /** Registers a child module under `name` and returns it. */
  protected module<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  /** (name, tensor) for every parameter, depth first in registration order, with dotted names. */
  *namedParameters(prefix = ''): Generator<[string, Tensor]> {
    for (const [n, t] of this.ownParams) yield [prefix + n, t];
    for (const [n, m] of this.children) yield* m.namedParameters(`${prefix}${n}.`);
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, t]) => t);
  }

  /** Total number of parameter elements. */
  numParameters(): number {
    return this.parameters().reduce((s, t) => s + t.size, 0);
  }

  /** Replaces the parameter called `name` in place: copies `values` into it after checking the shape. */
  setParameter(name: string, values: ArrayLike<number>, shape: readonly number[]): void {
    const t = this.getParameter(name);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ShapeError('setParameter', `${name}: expected shape ${fmtShape(t.shape)}, got ${fmtShape(shape)}`);
    }
    const d = t.data;
    for (let i = 0; i < d.length; i++) d[i] = values[i];
  }

  getParameter(name: string): Tensor {
    for (const [n, t] of this.namedParameters()) if (n === name) return t;
    throw new Error(`no parameter named '${name}'`);
  }

  /** Turns gradients on or off for every parameter (a frozen reference model has them off). */
  requiresGrad(flag: boolean): this {
    for (const t of this.parameters()) t.requiresGrad = flag;
    return this;
  }

  /** Disposes every parameter's storage and gradient. The module is unusable afterwards. */
  dispose(): void {
    for (const t of this.parameters()) {
      t.grad?.dispose();
      t.dispose();
    }
  }
}

/** A numbered list of modules, named `0`, `1`, … like torch.nn.ModuleList. */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.module(String(i), m));
  }
}
