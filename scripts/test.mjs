// `npm test`: runs every compiled test file twice, on the native backend (when the addon is built) and on the
// reference backend (DPO_BACKEND=reference), so one suite checks both. Exits non-zero if either run fails.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const dir = 'dist/test';
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => `${dir}/${f}`);
const nativeBuilt = existsSync('build/Release/dpo_native.node');
const runs = nativeBuilt ? ['native', 'reference'] : ['reference'];
if (!nativeBuilt) console.log('# the native addon is not built (build/Release/dpo_native.node); testing the reference backend only');
let failed = false;
for (const backend of runs) {
  console.log(`\n# ===== backend: ${backend} =====`);
  const r = spawnSync(process.execPath, ['--expose-gc', '--test', ...files], {
    stdio: 'inherit',
    env: { ...process.env, DPO_BACKEND: backend },
  });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
