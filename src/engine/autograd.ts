// Reverse-mode autograd. backward(root) walks the recorded graph in reverse topological order, applies each op's
// gradient rule (one per primitive, typed in graph.ts so a missing rule does not compile), sums the gradients that
// reach a tensor from several consumers, and accumulates leaf gradients into `.grad`. Intermediate gradients are
// disposed as soon as they have been used, and the graph is released afterwards (no retain_graph).
import { GradError, ShapeError, fmtShape } from './errors.js';
import type { GradRules, Node, OpName } from './graph.js';
import { elementwiseRules, addInPlace } from './ops/elementwise.js';
import { matmulRules } from './ops/matmul.js';
import { nnRules } from './ops/nn.js';
import { reduceRules } from './ops/reduce.js';
import { accumulateSliceGrad, shapeRules } from './ops/shape.js';
import { sameShape } from './ops/util.js';
import { empty, noGrad, registerBackward, scope, Tensor } from './tensor.js';

const gradRules: GradRules = { ...elementwiseRules, ...reduceRules, ...shapeRules, ...matmulRules, ...nnRules };

function applyRule<K extends OpName>(node: Node<K>, grad: Tensor, out: Tensor): (Tensor | null)[] {
  const rule: GradRules[K] = gradRules[node.op];
  return rule(grad, node, out);
}

/** Tensors reachable from root through recorded nodes, in reverse topological order (root first). */
function reverseTopological(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [t, expanded] = stack.pop()!;
    if (expanded) {
      order.push(t);
      continue;
    }
    if (seen.has(t)) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const inp of t.node?.inputs ?? []) if (inp?.requiresGrad && !seen.has(inp)) stack.push([inp, false]);
  }
  return order.reverse();
}

/**
 * Computes d root / d leaf for every leaf that requires grad and adds it to leaf.grad. root must be a scalar unless
 * `grad` (same shape as root) is given.
 */
export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) throw new GradError('backward', `the tensor ${fmtShape(root.shape)} does not require grad: no input it depends on has requiresGrad`);
  if (!grad && root.size !== 1) {
    throw new GradError('backward', `called on a non-scalar tensor of shape ${fmtShape(root.shape)} without a gradient; pass grad of the same shape or reduce to a scalar first`);
  }
  if (grad && !sameShape(grad.shape, root.shape)) throw new ShapeError('backward', `grad shape ${fmtShape(grad.shape)} must equal the tensor's shape ${fmtShape(root.shape)}`);
  noGrad(() => {
    const grads = new Map<Tensor, Tensor>();
    let seed: Tensor;
    if (grad) {
      seed = empty(grad.shape, root.dtype);
      seed.floatData().set(grad.floatData());
    } else {
      seed = empty(root.shape, root.dtype);
      seed.floatData().fill(1);
    }
    grads.set(root, seed.keep());
    for (const t of reverseTopological(root)) {
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      const node = t.node;
      if (!node) {
        accumulateLeaf(t, g);
        continue;
      }
      if (node.op === 'slice' && node.inputs[0]?.requiresGrad && grads.has(node.inputs[0])) {
        // The input already holds a gradient (another slice of it came first): add this window in place.
        accumulateSliceGrad(grads.get(node.inputs[0])!, g, node.saved.starts);
        g.dispose();
        t.node = null;
        continue;
      }
      const results = scope(() => applyRule(node, g, t));
      const stored = new Set<Tensor>(); // results now owned by `grads`
      node.inputs.forEach((inp, i) => {
        const r = results[i];
        if (!inp || !inp.requiresGrad || !r) return;
        if (!sameShape(r.shape, inp.shape)) {
          throw new ShapeError(`backward(${node.op})`, `the rule returned a gradient of shape ${fmtShape(r.shape)} for input ${i} of shape ${fmtShape(inp.shape)}`);
        }
        const prev = grads.get(inp);
        if (prev) {
          addInPlace(prev, r); // prev may be r itself (x used twice): then this doubles it, which is right
        } else {
          const owned = stored.has(r) ? copyOf(r) : r; // each input owns its gradient, since sums happen in place
          grads.set(inp, owned.keep());
          stored.add(owned);
        }
      });
      for (const r of [...results, g]) if (r && !stored.has(r)) r.dispose();
      t.node = null; // release the graph as we go
    }
  });
}

function copyOf(t: Tensor): Tensor {
  const c = empty(t.shape, t.dtype);
  c.floatData().set(t.floatData());
  return c;
}

function accumulateLeaf(t: Tensor, g: Tensor): void {
  if (t.grad && !t.grad.disposed) {
    addInPlace(t.grad, g);
    g.dispose();
  } else {
    t.grad = g.keep();
  }
}

/** Sets `.grad` of each tensor to null, disposing the old gradients. */
export function zeroGrad(params: Iterable<Tensor>): void {
  for (const p of params) {
    p.grad?.dispose();
    p.grad = null;
  }
}

registerBackward(backward);
