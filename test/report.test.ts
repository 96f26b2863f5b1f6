// The HTML report: run-folder validation errors (what is missing, file:line of a bad line), escaping of hostile
// strings, tick maths, the `dpo report` command, and the page itself in real headless Chromium (no console errors,
// no network, drawn charts, token spans, a screenshot that is not blank). DPO_REPORT_SCREENSHOT=PATH saves it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { escapeHtml, readRunDir, RunDirError, writeReport, type MachineInfo } from '../src/report/index.js';
import { niceTicks, tickLabels } from '../src/report/charts.js';
import { colorLimit, rewardColor } from '../src/report/heatmap.js';
import { colourStats, decodePng } from './fixtures/report/png.js';
import { INJECTION, SYNTHETIC_TOKEN_COUNT, writeSyntheticRun } from './fixtures/report/synthetic-run.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const scratch = mkdtempSync(join(tmpdir(), 'dpo-report-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const MACHINE: MachineInfo = {
  dpo_ts_version: '0.1.0', node: 'v20.0.0', os: 'Linux test', cpu: 'Test CPU', cores: 2, backend: 'reference (1 thread)', generated_at: '2025-01-01T00:00:00.000Z',
};

function runDir(name: string, files: Record<string, string>): string {
  const dir = join(scratch, name);
  mkdirSync(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return dir;
}

function throwsRunDir(dir: string, message: RegExp): void {
  assert.throws(() => readRunDir(dir), (e: unknown) => e instanceof RunDirError && message.test(e.message) ? true : assert.fail(`got ${String(e)}, want ${message}`));
}

// ------------------------------------------------------------------------------------------------ validation

test('a folder without metrics.jsonl is not a run, and the error says so and lists what is there', () => {
  const dir = runDir('not-a-run', { 'notes.txt': 'hi' });
  throwsRunDir(dir, new RegExp(`^no metrics\\.jsonl in ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: is this a dpo train/demo output folder\\? \\(it holds: notes\\.txt\\)$`));
  throwsRunDir(join(scratch, 'missing'), /missing does not exist/);
  throwsRunDir(join(dir, 'notes.txt'), /is a file, not a folder/);
});

test('a malformed metrics.jsonl line is reported as file:line', () => {
  const dir = runDir('bad-json', { 'metrics.jsonl': '{"step": 1, "loss": 0.69}\n\n{"step": 2, "loss": \n' });
  throwsRunDir(dir, new RegExp(`metrics\\.jsonl:3: not valid JSON`));
  throwsRunDir(runDir('not-object', { 'metrics.jsonl': '{"step": 1}\n[1, 2]\n' }), /metrics\.jsonl:2: expected a JSON object of metrics, got an array/);
  throwsRunDir(runDir('no-step', { 'metrics.jsonl': '{"loss": 0.5}\n' }), /metrics\.jsonl:1: "step" must be an integer ≥ 0, got nothing/);
  throwsRunDir(runDir('bad-step', { 'metrics.jsonl': '{"step": 1.5}\n' }), /metrics\.jsonl:1: "step" must be an integer ≥ 0, got number 1.5/);
});

test('null and non-numeric metric values are skipped, numeric ones kept', () => {
  const run = readRunDir(runDir('nulls', { 'metrics.jsonl': '{"step": 0, "loss": null, "grad_norm": 2.5, "phase": "train"}\n' }));
  assert.deepEqual(run.metrics, [{ step: 0, values: { grad_norm: 2.5 } }]);
  assert.equal(run.frontier, null);
  assert.equal(run.tokenSequences, null);
  assert.equal(run.trainingArgs, null);
});

test('bad frontier.json and token_rewards.jsonl entries are errors that name the point or line', () => {
  const metrics = '{"step": 1, "loss": 0.6}\n';
  throwsRunDir(runDir('frontier-obj', { 'metrics.jsonl': metrics, 'frontier.json': '{"points": []}' }), /frontier\.json: expected a JSON array/);
  throwsRunDir(runDir('frontier-kl', { 'metrics.jsonl': metrics, 'frontier.json': '[{"method": "dpo", "kl": 1, "reward": 0}, {"method": "dpo", "reward": 1}]' }), /frontier\.json: point 1: missing "kl"/);
  throwsRunDir(runDir('frontier-method', { 'metrics.jsonl': metrics, 'frontier.json': '[{"kl": 1, "reward": 0}]' }), /point 0: "method" must be a non-empty string/);
  throwsRunDir(runDir('tokens-len', { 'metrics.jsonl': metrics, 'token_rewards.jsonl': '{"tokens": ["a"], "rewards": [0.1]}\n{"tokens": ["a", "b"], "rewards": [0.1]}\n' }),
    /token_rewards\.jsonl:2: 2 tokens but 1 rewards/);
  throwsRunDir(runDir('tokens-json', { 'metrics.jsonl': metrics, 'token_rewards.jsonl': 'nope\n' }), /token_rewards\.jsonl:1: not valid JSON/);
  throwsRunDir(runDir('args', { 'metrics.jsonl': metrics, 'training_args.json': '[1]' }), /training_args\.json: expected a JSON object/);
});

test('token_rewards.jsonl rows of `dpo token-rewards` give a chosen and a rejected sequence; dropped rows are skipped', () => {
  const row = { index: 3, chosen: { token_ids: [5, 6], tokens: ['a', 'b'], rewards: [0.1, 0.2], reward: 0.3 }, rejected: { token_ids: [7], tokens: null, rewards: [-0.5], reward: -0.5 } };
  const run = readRunDir(runDir('tr-rows', { 'metrics.jsonl': '{"step": 1}\n', 'token_rewards.jsonl': `${JSON.stringify({ index: 2, dropped: 'too long' })}\n${JSON.stringify(row)}\n` }));
  assert.deepEqual(run.tokenSequences, [
    { label: '#3 chosen', tokens: ['a', 'b'], rewards: [0.1, 0.2] },
    { label: '#3 rejected', tokens: ['⟨7⟩'], rewards: [-0.5] },
  ]);
});

// ------------------------------------------------------------------------------------------------ pure parts

test('escapeHtml turns every markup character into an entity', () => {
  assert.equal(escapeHtml(`<a href="x" onclick='y'>&</a>`), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
});

test('niceTicks covers the range with 1-2-5 steps and tickLabels prints them cleanly', () => {
  assert.deepEqual(niceTicks(0, 1).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0.37, 0.71).ticks, [0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75]);
  assert.deepEqual(niceTicks(3, 3).ticks, [2.7, 2.8, 2.9, 3, 3.1, 3.2, 3.3]); // a flat series is padded by 10%
  assert.deepEqual(tickLabels(niceTicks(0, 5e-7)), { labels: ['0', '1', '2', '3', '4', '5'], scale: '×10⁻⁷' });
  assert.deepEqual(tickLabels(niceTicks(1e-5, 2e-5)), { labels: ['1.0', '1.2', '1.4', '1.6', '1.8', '2.0'], scale: '×10⁻⁵' });
  assert.deepEqual(tickLabels(niceTicks(-0.25, 0)), { labels: ['−0.25', '−0.20', '−0.15', '−0.10', '−0.05', '0'], scale: '' });
  assert.deepEqual(tickLabels(niceTicks(0, 20000, 4)), { labels: ['0', '5k', '10k', '15k', '20k'], scale: '' });
});

test('token colours: 0 is white, ±limit are the scale ends, and the limit is the 95th percentile of |reward|', () => {
  assert.equal(rewardColor(0, 1).background, 'rgb(255,255,255)');
  assert.equal(rewardColor(2, 1).background, 'rgb(33,102,172)');
  assert.equal(rewardColor(-1, 1).background, 'rgb(178,24,43)');
  const rewards = Array.from({ length: 100 }, (_, i) => (i < 99 ? i / 100 : 50)); // one outlier
  assert.equal(colorLimit(rewards), 0.95);
  assert.equal(colorLimit([0, 0]), 1);
});

// ------------------------------------------------------------------------------------------------ the page

test('writeReport writes RUN_DIR/report.html with no hostile markup surviving unescaped', () => {
  const dir = writeSyntheticRun(join(scratch, 'synthetic'));
  const result = writeReport(dir, { machine: MACHINE });
  assert.equal(result.path, join(dir, 'report.html'));
  assert.deepEqual(result.sections, { frontier: true, tokens: true, config: true });
  const html = readFileSync(result.path, 'utf8');
  assert.ok(!html.includes('<img'), 'an <img> tag from a token or config value reached the page');
  assert.equal(html.match(/<script/g)?.length, 1, 'only the inline JSON data block may be a <script>');
  assert.equal(html.match(/<\/script>/g)?.length, 1, 'a hostile </script> closed the data block');
  assert.ok(html.includes(escapeHtml(INJECTION)), 'the hostile string is shown escaped, as text');
  assert.ok(!/https?:\/\//.test(html.replaceAll('xmlns="http://www.w3.org/2000/svg"', '')), 'the page refers to the network');
});

test('`dpo report` writes --output, and on a folder that is not a run says what is missing and exits non-zero', () => {
  const dpo = (...args: string[]) => spawnSync(process.execPath, [join(ROOT, 'bin', 'dpo.js'), 'report', ...args], { cwd: ROOT, encoding: 'utf8' });
  const dir = writeSyntheticRun(join(scratch, 'cli-run'), { frontier: false, tokens: false });
  const out = join(scratch, 'elsewhere.html');
  const ok = dpo(dir, '--output', out);
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout.trim().split('\n').pop()!).file, out);
  assert.ok(readFileSync(out, 'utf8').startsWith('<!DOCTYPE html>'));
  const empty = runDir('cli-empty', {});
  const bad = dpo(empty);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, new RegExp(`no metrics\\.jsonl in .*cli-empty: is this a dpo train/demo output folder\\? \\(the folder is empty\\)`));
  const usage = dpo();
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /give the run folder/);
});

test('in headless Chromium the report renders charts and heatmaps, with no errors, no network and no injected script', async (t) => {
  if (!existsSync(CHROMIUM)) {
    const reason = `${CHROMIUM} is missing (install it: apt-get install -y chromium)`;
    console.log(`# report browser test skipped: ${reason}`);
    t.skip(reason);
    return;
  }
  const { chromium } = await import('playwright-core');
  const dir = writeSyntheticRun(join(scratch, 'dpo-gpt2-tiny'));
  const { path } = writeReport(dir, { machine: MACHINE });
  const profile = mkdtempSync(join(scratch, 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 900 },
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(path).href, { waitUntil: 'load' });

    const charts = await page.$$eval('svg.chart', (svgs) => svgs.map((svg) => {
      const drawn = [...svg.querySelectorAll('polyline, path, circle')].filter((el) => {
        const box = (el as SVGGraphicsElement).getBBox();
        const points = el.getAttribute('points')?.trim().split(/\s+/).length ?? 0;
        return el.tagName === 'circle' ? box.width > 0 : points >= 2 || box.width + box.height > 0;
      });
      return { label: svg.getAttribute('aria-label'), drawn: drawn.length, width: svg.getBoundingClientRect().width };
    }));
    assert.ok(charts.length >= 10, `expected the 9 training charts and the frontier, got ${charts.length}`);
    for (const c of charts) {
      assert.ok(c.drawn > 0, `chart '${c.label}' has no drawn lines or points`);
      assert.ok(c.width > 300, `chart '${c.label}' is ${c.width}px wide`);
    }
    const tokens = await page.$$eval('.tok', (spans) => spans.map((s) => ({ text: s.textContent, title: s.getAttribute('title'), bg: getComputedStyle(s).backgroundColor })));
    assert.equal(tokens.length, SYNTHETIC_TOKEN_COUNT);
    const paris = tokens.find((x) => x.text === ' Paris')!;
    assert.equal(paris.title, '" Paris": 0.61');
    assert.match(paris.bg, /^rgb\(3\d, 10\d, 17\d\)$/, 'the largest positive reward is drawn in the blue end of the scale');
    assert.ok(tokens.some((x) => x.text === ` ${INJECTION}`), 'the hostile token is shown as its literal text');

    const hostile = await page.evaluate(() => ({
      pwned: Reflect.get(window, '__pwned') as unknown, imgs: document.images.length, scripts: document.scripts.length,
      runName: [...document.querySelectorAll('table.config tr')].find((tr) => tr.querySelector('th')?.textContent === 'run_name')?.querySelector('td')?.textContent,
    }));
    assert.deepEqual(hostile, { pwned: undefined, imgs: 0, scripts: 1, runName: INJECTION });
    assert.deepEqual(requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:')), [], 'the report fetched from the network');
    assert.deepEqual(errors, []);

    const png = await page.screenshot({ fullPage: true });
    const stats = colourStats(decodePng(png));
    assert.ok(stats.distinctColours > 100, `the screenshot has only ${stats.distinctColours} colours`);
    assert.ok(stats.inkedFraction > 0.03, `only ${(100 * stats.inkedFraction).toFixed(1)}% of the screenshot is drawn on`);
    const save = process.env.DPO_REPORT_SCREENSHOT;
    if (save) writeFileSync(save, await page.screenshot({ fullPage: true }));
  } finally {
    await context.close();
  }
});
