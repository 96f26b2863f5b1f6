// Typed errors raised by the engine. Each names the op, the argument and what was expected, so that the message
// alone tells a user what to fix.

export class ShapeError extends Error {
  override name = 'ShapeError';
  constructor(op: string, detail: string) {
    super(`${op}: ${detail}`);
  }
}

export class DTypeError extends Error {
  override name = 'DTypeError';
  constructor(op: string, detail: string) {
    super(`${op}: ${detail}`);
  }
}

export class IndexError extends Error {
  override name = 'IndexError';
  constructor(op: string, detail: string) {
    super(`${op}: ${detail}`);
  }
}

export class GradError extends Error {
  override name = 'GradError';
  constructor(op: string, detail: string) {
    super(`${op}: ${detail}`);
  }
}

export class DisposedError extends Error {
  override name = 'DisposedError';
  constructor(op: string) {
    super(`${op}: the tensor was disposed (it left a scope or dispose() was called); keep() it or clone it first`);
  }
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
