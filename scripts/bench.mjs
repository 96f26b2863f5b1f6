// `npm run bench`: dpo-ts against its peers in one run, alternating them so that machine load hits both alike:
// fp32 GEMM 1024³ (dpo bench gemm vs numpy), then DPO training steps (dpo bench train vs bench_torch.py) at shape (a)
// and GPT-2-small shape (b), plus dpo-ts-only rows (the levers: precomputed reference log-probs, prefix sharing,
// padding-free packing of random-length completions; a Llama shape). Prints a markdown table and writes it between the
// bench-table markers of docs/performance.md. Flags: --threads N (2), --rounds N (1),
// --only a,b,llama,pre,prefix,packing (all), --no-write. Peers live in ../shared/bench (or $DPO_BENCH_PEERS); missing ones are skipped.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const threads = Number(flag('threads', '2'));
const rounds = Number(flag('rounds', '1'));
const only = new Set(flag('only', 'a,b,llama,pre,prefix,packing').split(','));
const write = !argv.includes('--no-write');
const python = '/usr/bin/python3';
const peers = process.env.DPO_BENCH_PEERS ?? [join(root, '..', 'shared', 'bench'), join(root, 'shared', 'bench')].find((d) => existsSync(d)) ?? '';

const shapes = {
  a: { label: '(a) GPT-2 L4 H4 C256 V512, T128, 4 pairs', args: ['--layers', '4', '--heads', '4', '--hidden', '256', '--vocab', '512', '--seq', '128', '--pairs', '4'], steps: ['--steps', '10', '--warmup', '3'] },
  b: { label: '(b) GPT-2-small L12 H12 C768 V50257, T256, 1 pair', args: ['--layers', '12', '--heads', '12', '--hidden', '768', '--vocab', '50257', '--seq', '256', '--pairs', '1'], steps: ['--steps', '3', '--warmup', '1'] },
};

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)];
const fmt = (x, digits = 0) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
const pct = (x) => (x === null || x === undefined ? '—' : `${(100 * x).toFixed(1)}%`);
const commands = [];

/** Runs a command, echoes it, and returns the JSON object on its last line that starts with '{' (null on failure). */
function run(label, cmd, args, env = {}) {
  const shown = `${Object.entries(env).map(([k, v]) => `${k}=${v} `).join('')}${cmd === process.execPath ? 'node' : cmd} ${args.join(' ')}`;
  commands.push(shown);
  process.stdout.write(`\n$ ${shown}\n`);
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  const lines = (r.stdout ?? '').trim().split('\n');
  const json = [...lines].reverse().find((l) => l.startsWith('{'));
  if (r.status !== 0 || !json) {
    process.stdout.write(`  ${label} failed (status ${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}\n`);
    return null;
  }
  const out = JSON.parse(json);
  for (const l of lines.filter((x) => x.trim() !== '' && !x.startsWith('{')).slice(-2)) process.stdout.write(`  ${l}\n`);
  process.stdout.write(`  → ${json.slice(0, 240)}${json.length > 240 ? '…' : ''}\n`);
  return out;
}

/** Why a peer cannot run ('' when it can). */
function peerProblem(module) {
  if (!existsSync(python)) return `${python} is missing`;
  if (!peers) return 'the peer scripts (../shared/bench) are missing; set DPO_BENCH_PEERS';
  const r = spawnSync(python, ['-c', `import ${module}`], { encoding: 'utf8' });
  return r.status === 0 ? '' : `${python} cannot import ${module} (apt-get install -y python3-${module})`;
}

// The peer runs inside a wrapper that adds its peak RSS (ru_maxrss, KiB on Linux) as a last JSON line.
const peakRssWrapper = 'import json, resource, runpy, sys; p = sys.argv[1]; sys.argv = sys.argv[1:]\n'
  + 'try: runpy.run_path(p, run_name="__main__")\n'
  + 'finally: print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))';
function runPeer(label, script, args, env) {
  const r = spawnSync(python, ['-c', peakRssWrapper, join(peers, script), ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  const shown = `${Object.entries(env).map(([k, v]) => `${k}=${v} `).join('')}${python} ${join(peers, script)} ${args.join(' ')}`;
  commands.push(shown);
  process.stdout.write(`\n$ ${shown}\n`);
  const objects = (r.stdout ?? '').trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  if (r.status !== 0 || objects.length < 2) {
    process.stdout.write(`  ${label} failed (status ${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}\n`);
    return null;
  }
  const out = { ...objects[objects.length - 2], ...objects[objects.length - 1] };
  process.stdout.write(`  → ${JSON.stringify(out).slice(0, 240)}\n`);
  return out;
}

const dpo = (args) => run('dpo-ts', process.execPath, ['bin/dpo.js', ...args]);
const load = [loadavg()[0]];
const torchProblem = peerProblem('torch');
const numpyProblem = peerProblem('numpy');
for (const p of [numpyProblem && `numpy peer skipped: ${numpyProblem}`, torchProblem && `PyTorch peer skipped: ${torchProblem}`]) if (p) console.log(`note: ${p}`);
const blasEnv = { OPENBLAS_NUM_THREADS: String(threads) };
const torchEnv = { OMP_WAIT_POLICY: 'PASSIVE', OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };

// ---------------------------------------------------------------- GEMM 1024³, alternating
const gemmDpo = [];
const gemmNumpy = [];
for (let i = 0; i < rounds; i++) {
  const d = dpo(['bench', 'gemm', '--m', '1024', '--n', '1024', '--k', '1024', '--threads', String(threads)]);
  if (d) gemmDpo.push(d.gflops);
  if (!numpyProblem) {
    const n = runPeer('numpy', 'gemm_numpy.py', ['--m', '1024', '--n', '1024', '--k', '1024'], blasEnv);
    if (n) gemmNumpy.push(n.gflops);
  }
}
const ceiling = gemmNumpy.length ? median(gemmNumpy) : null;
const ceilingArgs = ceiling ? ['--gemm-ceiling-gflops', String(ceiling)] : [];

// ---------------------------------------------------------------- DPO steps, alternating per shape
const rows = [];
/** A dpo-ts-only row: the same command once per round; the successful runs. */
const dpoRounds = (args) => Array.from({ length: rounds }, () => dpo(args)).filter((r) => r);
/** Median over rounds of each field we report. */
const summarise = (runs) => (runs.length === 0 ? null : {
  step: median(runs.map((r) => r.step_s_median)),
  tokens: runs[0].tokens_per_step,
  rss: median(runs.map((r) => r.peak_memory_mb ?? r.peak_rss_mb)),
  json: runs[0],
});
for (const key of ['a', 'b']) {
  if (!only.has(key)) continue;
  const s = shapes[key];
  const ours = [];
  const theirs = [];
  for (let i = 0; i < rounds; i++) {
    const d = dpo(['bench', 'train', ...s.args, ...s.steps, '--threads', String(threads), ...ceilingArgs]);
    if (d) ours.push(d);
    if (!torchProblem) {
      const t = runPeer('torch', 'bench_torch.py', [...s.args, ...s.steps, '--threads', String(threads)], torchEnv);
      if (t) theirs.push(t);
    }
  }
  const o = summarise(ours);
  const t = summarise(theirs);
  rows.push({ label: s.label, ours: o, torch: t, flops: o?.json.flops_per_step ?? null });
  if (key === 'a') {
    const levers = [];
    if (only.has('pre')) levers.push(['--precompute-ref-log-probs']);
    if (only.has('prefix')) levers.push(['--prefix-sharing'], ['--prefix-sharing', '--precompute-ref-log-probs']);
    for (const flags of levers) {
      const r = dpoRounds(['bench', 'train', ...s.args, ...s.steps, '--threads', String(threads), ...ceilingArgs, ...flags]);
      const label = flags.length === 1 && flags[0] === '--precompute-ref-log-probs'
        ? `${s.label}, dpo-ts with --precompute-ref-log-probs (PyTorch: live reference)`
        : `${s.label}, dpo-ts with ${flags.join(' ')} (PyTorch: padded, live reference)`;
      rows.push({ label, ours: summarise(r), torch: t, flops: r[0]?.flops_per_step ?? null, torchFlops: o?.json.flops_per_step ?? null });
    }
  }
}
if (only.has('packing')) {
  // Completions of 16–96 random tokens after the 32-token prompt: padding is what packing removes. dpo-ts only.
  const args = [...shapes.a.args, '--min-completion-len', '16'];
  for (const levers of [[], ['--padding-free'], ['--padding-free', '--prefix-sharing']]) {
    const r = dpoRounds(['bench', 'train', ...args, ...shapes.a.steps, '--threads', String(threads), ...ceilingArgs, ...levers]);
    rows.push({ label: `(a″) shape (a) with completions of 16–96 tokens${levers.length ? `, ${levers.join(' ')}` : ', padded'}: dpo-ts only`, ours: summarise(r), torch: null, flops: r[0]?.flops_per_step ?? null });
  }
}
if (only.has('llama')) {
  const args = ['--arch', 'llama', ...shapes.a.args];
  const l = dpoRounds(['bench', 'train', ...args, ...shapes.a.steps, '--threads', String(threads), ...ceilingArgs]);
  rows.push({ label: '(a′) Llama L4 H4 C256 (SwiGLU 704) V512, T128, 4 pairs: dpo-ts only', ours: summarise(l), torch: null, flops: l[0]?.flops_per_step ?? null });
}
load.push(loadavg()[0]);

// ---------------------------------------------------------------- the table
const mfu = (flops, step) => (flops && step && ceiling ? flops / step / 1e9 / ceiling : null);
const ourGemm = gemmDpo.length ? median(gemmDpo) : null;
const cpu = cpus();
const lines = [
  `Machine: ${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} logical cores, ${threads} threads for every program; Node ${process.version}`
    + `${theirsVersion(rows)}. Load average (1 min) ${load[0].toFixed(2)} at the start, ${load[1].toFixed(2)} at the end.`,
  '',
  `GEMM 1024³ fp32: dpo-ts ${fmt(ourGemm, 1)} GFLOP/s, numpy/OpenBLAS ${fmt(ceiling, 1)} GFLOP/s (the MFU ceiling below)`
    + `${ourGemm && ceiling ? `, ratio ${(ourGemm / ceiling).toFixed(2)}` : ''}.`,
  '',
  '| workload | dpo-ts tokens/s | PyTorch tokens/s | dpo-ts / PyTorch | dpo-ts MFU | PyTorch MFU | dpo-ts peak RSS (MB) | PyTorch peak RSS (MB) |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => {
    const ours = r.ours ? r.ours.tokens / r.ours.step : null;
    const theirs = r.torch ? r.torch.tokens / r.torch.step : null;
    return `| ${r.label} | ${fmt(ours)} | ${fmt(theirs)} | ${ours && theirs ? `${(ours / theirs).toFixed(2)}×` : '—'} | ${pct(mfu(r.flops, r.ours?.step))} `
      + `| ${pct(mfu(r.torchFlops ?? r.flops, r.torch?.step))} | ${fmt(r.ours?.rss)} | ${fmt(r.torch?.rss)} |`;
  }),
  '',
  `Medians of ${rounds} round${rounds > 1 ? 's' : ''}; each dpo-ts run was followed by its PyTorch run. MFU = model FLOPs per step (dpo-ts's count,`
    + ' docs/performance.md) / step time / the numpy GEMM rate. Commands, in order:',
  '',
  '```',
  ...commands,
  '```',
];
function theirsVersion(rs) {
  const t = rs.find((r) => r.torch)?.torch?.json;
  return t ? `, PyTorch ${t.torch}` : '';
}
const table = lines.join('\n');
console.log(`\n${table}`);

if (write) {
  const doc = join(root, 'docs', 'performance.md');
  const [begin, end] = ['<!-- bench-table:begin -->', '<!-- bench-table:end -->'];
  const text = existsSync(doc) ? readFileSync(doc, 'utf8') : `# Performance\n\n${begin}\n${end}\n`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  const next = i >= 0 && j > i ? `${text.slice(0, i + begin.length)}\n${table}\n${text.slice(j)}` : `${text.trimEnd()}\n\n${begin}\n${table}\n${end}\n`;
  writeFileSync(doc, next);
  console.log(`\nwrote the table into ${doc}`);
}
