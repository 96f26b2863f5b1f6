// Picks the backend at start-up: the native addon when it loads, else the reference backend with a one-line
// warning. DPO_BACKEND=reference forces the reference backend; DPO_BACKEND=native makes a missing addon an error.
import type { Backend } from '../engine/backend.js';
import { setBackend } from '../engine/tensor.js';
import { loadNativeBackend } from './native.js';
import { referenceBackend } from './reference.js';

let chosen: Backend | null = null;

export function initBackend(name: string | undefined = process.env.DPO_BACKEND): Backend {
  const b = pick(name);
  setBackend(b);
  chosen = b;
  return b;
}

function pick(name: string | undefined): Backend {
  if (name === 'reference') return referenceBackend;
  if (name !== undefined && name !== '' && name !== 'native') {
    throw new Error(`dpo-ts: DPO_BACKEND=${name} is not a backend; use 'native' or 'reference'`);
  }
  const native = loadNativeBackend();
  if (native) return native;
  if (name === 'native') {
    throw new Error('dpo-ts: DPO_BACKEND=native but the native addon did not load; run `npm rebuild` (needs a C++ compiler and python3)');
  }
  process.stderr.write('dpo-ts: warning: the native addon is not built or did not load; using the slow reference backend\n');
  return referenceBackend;
}

export function currentBackend(): Backend {
  return chosen ?? initBackend();
}

export { referenceBackend, loadNativeBackend };
