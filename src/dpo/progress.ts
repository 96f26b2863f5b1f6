// Training progress on stderr. On a TTY: one line redrawn in place every step (a bar, step/total, loss, reward
// accuracy, tokens/s, ETA). Otherwise (logs, CI, pipes): one plain line per logging step, nothing in between.
// Messages (data summary, evaluation, checkpoints) go through `message`, which keeps the bar below them.

export interface ProgressFields {
  step: number;
  totalSteps: number;
  loss: number;
  /** rewards/accuracies, or undefined when there is none (SFT). */
  accuracy?: number;
  tokensPerSecond: number;
}

export interface Progress {
  /** Every optimizer step (redraws the TTY line). */
  step(f: ProgressFields): void;
  /** Every logging step (the plain line when not on a TTY). */
  logged(f: ProgressFields): void;
  /** A line of text above the bar. */
  message(text: string): void;
  /** Ends the bar line. */
  done(): void;
}

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** "1h02m", "3m07s", "12s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** The text of one progress line (without the bar), e.g. "step 40/100 | loss 0.6421 | acc 0.750 | 812 tok/s | ETA 1m02s". */
export function progressText(f: ProgressFields, etaSeconds: number): string {
  const parts = [`step ${f.step}/${f.totalSteps}`, `loss ${f.loss.toFixed(4)}`];
  if (f.accuracy !== undefined) parts.push(`acc ${f.accuracy.toFixed(3)}`);
  parts.push(`${f.tokensPerSecond.toFixed(0)} tok/s`, `ETA ${formatDuration(etaSeconds)}`);
  return parts.join(' | ');
}

/** `firstStep` is the step the run starts from (non-zero when resuming), so the ETA uses this process's pace. */
export function createProgress(stream: ProgressStream = process.stderr, firstStep = 0): Progress {
  const started = performance.now();
  const tty = stream.isTTY === true;
  let drawn = false;
  const eta = (f: ProgressFields) => {
    const done = f.step - firstStep;
    return done > 0 ? ((performance.now() - started) / 1000 / done) * (f.totalSteps - f.step) : NaN;
  };
  const clear = () => {
    if (drawn) stream.write('\r\x1b[2K');
    drawn = false;
  };
  let last: ProgressFields | null = null;
  return {
    step(f) {
      last = f;
      if (!tty) return;
      const text = progressText(f, eta(f));
      const columns = stream.columns || 100; // 0 or undefined: the size is unknown
      const width = Math.min(30, columns - text.length - 4); // the bar takes what the text leaves
      const bar = width >= 5 ? `[${'#'.repeat(Math.round((width * f.step) / Math.max(1, f.totalSteps))).padEnd(width, '.')}] ` : '';
      stream.write(`\r\x1b[2K${(bar + text).slice(0, columns - 1)}`);
      drawn = true;
    },
    logged(f) {
      if (!tty) stream.write(`${progressText(f, eta(f))}\n`);
    },
    message(text) {
      const redraw = drawn;
      clear();
      stream.write(`${text}\n`);
      if (redraw && last) this.step(last);
    },
    done() {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  };
}
