// Builds the native addon at `npm install` / `npm ci`. A failed build is not fatal: dpo-ts then runs on the
// pure-TypeScript reference backend and says so once at start-up. Set DPO_REQUIRE_NATIVE=1 to make it fatal (CI does).
import { spawnSync } from 'node:child_process';

if (process.env.DPO_SKIP_NATIVE === '1') {
  console.warn('dpo-ts: DPO_SKIP_NATIVE=1, not building the native addon; the reference backend will be used.');
  process.exit(0);
}
const r = spawnSync('node-gyp', ['rebuild'], { stdio: 'inherit', shell: process.platform === 'win32' });
if (r.status !== 0) {
  const msg = 'dpo-ts: the native addon did not build; falling back to the (slow) reference backend.';
  if (process.env.DPO_REQUIRE_NATIVE === '1') {
    console.error(msg + ' DPO_REQUIRE_NATIVE=1, so this is an error.');
    process.exit(1);
  }
  console.warn(msg);
}
