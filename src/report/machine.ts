// The machine and versions a report records at generation time: dpo-ts and Node versions, OS, CPU model and cores,
// and the active compute backend. A run may also record its training machine as training_args.json's "machine"
// object with the same keys; the report shows both side by side.
import { existsSync, readFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, release, type } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { currentBackend } from '../backends/index.js';

export interface MachineInfo {
  dpo_ts_version: string;
  node: string;
  os: string;
  cpu: string;
  cores: number;
  backend: string;
  generated_at: string;
}

/** dpo-ts's version from the nearest package.json above this file (works from src/ and dist/src/). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const path = join(dir, 'package.json');
    if (existsSync(path)) {
      const pkg: unknown = JSON.parse(readFileSync(path, 'utf8'));
      const version = typeof pkg === 'object' && pkg !== null && 'version' in pkg ? pkg.version : undefined;
      return typeof version === 'string' ? version : 'unknown';
    }
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}

/** This machine, now. The backend is the one the process has selected (native addon or reference). */
export function machineInfo(now: Date = new Date()): MachineInfo {
  const backend = currentBackend();
  const cpuList = cpus();
  return {
    dpo_ts_version: packageVersion(),
    node: process.version,
    os: `${type()} ${release()} (${arch()})`,
    cpu: cpuList[0]?.model.trim() || 'unknown',
    cores: availableParallelism(),
    backend: `${backend.name} (${backend.threads} thread${backend.threads === 1 ? '' : 's'})`,
    generated_at: now.toISOString(),
  };
}
