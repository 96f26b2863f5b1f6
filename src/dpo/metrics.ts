// Training and evaluation metrics with TRL's names. A MetricsWindow sums per-pair values over the steps since the last
// log line (or over a whole evaluation), so every reported value is a mean over pairs, whatever the batch split:
// loss, rewards/chosen|rejected|margins|accuracies, logps/chosen|rejected, and logits/chosen|rejected as the mean raw
// logit over every completion (position, vocabulary) entry. Plain numbers only; no tensors are kept.

/** One batch's per-pair values (B each) and its logit totals, read from the loss output after backward. */
export interface BatchStats {
  losses: ArrayLike<number>;
  chosenRewards: ArrayLike<number>;
  rejectedRewards: ArrayLike<number>;
  chosenLogps: ArrayLike<number>;
  rejectedLogps: ArrayLike<number>;
  chosenLogitSum: number;
  chosenLogitEntries: number;
  rejectedLogitSum: number;
  rejectedLogitEntries: number;
}

export class MetricsWindow {
  private pairs = 0;
  private loss = 0;
  private chosenRewards = 0;
  private rejectedRewards = 0;
  private correct = 0;
  private chosenLogps = 0;
  private rejectedLogps = 0;
  private chosenLogitSum = 0;
  private chosenLogitEntries = 0;
  private rejectedLogitSum = 0;
  private rejectedLogitEntries = 0;

  /** @param preference false for SFT: only loss, logps/chosen and logits/chosen mean something. */
  constructor(private readonly preference: boolean) {}

  get size(): number {
    return this.pairs;
  }

  add(s: BatchStats): void {
    for (let i = 0; i < s.losses.length; i++) {
      this.pairs++;
      this.loss += s.losses[i];
      this.chosenRewards += s.chosenRewards[i];
      this.rejectedRewards += s.rejectedRewards[i];
      if (s.chosenRewards[i] > s.rejectedRewards[i]) this.correct++;
      this.chosenLogps += s.chosenLogps[i];
      this.rejectedLogps += s.rejectedLogps[i];
    }
    this.chosenLogitSum += s.chosenLogitSum;
    this.chosenLogitEntries += s.chosenLogitEntries;
    this.rejectedLogitSum += s.rejectedLogitSum;
    this.rejectedLogitEntries += s.rejectedLogitEntries;
  }

  /** Means over the pairs added, under TRL's names with `prefix` ('eval_' for evaluation). */
  summary(prefix = ''): Record<string, number> {
    const n = this.pairs;
    const out: Record<string, number> = { loss: this.loss / n };
    if (this.preference) {
      out['rewards/chosen'] = this.chosenRewards / n;
      out['rewards/rejected'] = this.rejectedRewards / n;
      out['rewards/accuracies'] = this.correct / n;
      out['rewards/margins'] = (this.chosenRewards - this.rejectedRewards) / n;
    }
    out['logps/chosen'] = this.chosenLogps / n;
    if (this.preference) out['logps/rejected'] = this.rejectedLogps / n;
    out['logits/chosen'] = this.chosenLogitSum / this.chosenLogitEntries;
    if (this.preference) out['logits/rejected'] = this.rejectedLogitSum / this.rejectedLogitEntries;
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [prefix + k, v]));
  }
}

/**
 * Memory figures for metrics.jsonl, in MiB: peak_memory_mb is the process's peak resident set size (the OS's
 * ru_maxrss: everything, including V8's heap and the typed arrays behind tensors); peak_tensor_memory_mb is the
 * engine's peak of live tensor bytes (storage.ts), the part the model, activations and optimizer state account for.
 */
export function memoryMetrics(peakLiveTensorBytes: number): { peak_memory_mb: number; peak_tensor_memory_mb: number } {
  const mib = (bytes: number) => Math.round((bytes / (1 << 20)) * 10) / 10;
  return { peak_memory_mb: mib(process.resourceUsage().maxRSS * 1024), peak_tensor_memory_mb: mib(peakLiveTensorBytes) };
}
