// The local pairwise judge: a dpo-ts causal LM, offline, is shown the pairwise template ({prompt}, {a}, {b}) and its
// next-token log-probs of the two answer letters are read. Each pair is asked in both orders to cancel position bias:
// P(a better) = ½·(σ(logp_A − logp_B | a shown as A) + σ(logp_B − logp_A | a shown as B)), the letters' two-way
// softmax averaged over the orders. The winner is the side with P > ½, its confidence that probability; exactly ½ is
// a tie. Concurrent prefer() calls share right-padded forward passes. It only compares: no score().
import { promptPrefixIds } from '../data/tokenize.js';
import { noGrad, scope } from '../engine/tensor.js';
import { loadPretrained, type Pretrained } from '../io/pretrained.js';
import type { Tokenizer } from '../io/tokenizer.js';
import { hiddenAt, rightPad } from '../models/sequence-classification.js';
import type { CausalLM } from '../models/types.js';
import { defaultPairwiseTemplate, fillTemplate } from './http-judge.js';
import type { Judge, Preference } from './judges.js';
import { MicroBatcher, checkBatchOptions, inLengthBatches } from './reward-model-judge.js';

export interface LocalPairwiseJudgeOptions {
  /** Template with {prompt}, {a} and {b}; default defaultPairwiseTemplate. */
  template?: string;
  /** Send the filled template as one user message through the chat template (generation prompt added). Default: whether the tokenizer has one. */
  chatTemplate?: boolean;
  /** Without the chat template, text put after the filled template for the letter to follow (default "\nAnswer:"). */
  answerPrefix?: string;
  /** Rows per forward pass (default 8). */
  batchSize?: number;
  /** Most tokens in one judge prompt; a longer one is an error (default: the model's max positions). */
  maxLength?: number;
}

/** The model's next-token log-probs (full-vocabulary softmax) of the two answer letters after one judge prompt. */
export interface AnswerReading {
  logpA: number;
  logpB: number;
}

export interface LocalComparison {
  /** a shown as A, b as B. */
  straight: AnswerReading;
  /** b shown as A, a as B. */
  swapped: AnswerReading;
  /** P(a better), averaged over the two orders (file header). */
  pFirst: number;
  preference: Preference;
}

/** What the model reads for one order: the prompt ids and the ids of the answer letters A and B after it. */
export interface JudgeContext {
  ids: number[];
  answerIds: [number, number];
}

export interface LocalPairwiseJudge extends Judge {
  compare(prompt: string, a: string, b: string): Promise<LocalComparison>;
  /** The context for (prompt, a, b) with a shown as A. */
  context(prompt: string, a: string, b: string): JudgeContext;
  stats(): { pairs: number; sequences: number; batches: number };
  /** Frees the weights, when this judge loaded them. */
  dispose(): void;
}

/**
 * The token ids of the letters A and B. A context ending in whitespace (a chat template's "assistant\n", a template
 * ending in a newline) is followed by the bare letter "A"; one ending in text ("Answer:") by " A", as a model writes
 * "Answer: A". When that variant is not one token per letter, the other is used; when neither is, an error.
 */
export function answerTokenIds(tokenizer: Tokenizer, contextText: string): [number, number] {
  const single = (text: string): number | null => {
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    return ids.length === 1 ? ids[0] : null;
  };
  const variants = /\s$/.test(contextText) ? ['', ' '] : [' ', ''];
  for (const space of variants) {
    const [a, b] = [single(`${space}A`), single(`${space}B`)];
    if (a !== null && b !== null && a !== b) return [a, b];
  }
  throw new Error(`${tokenizer.source}: neither "A"/"B" nor " A"/" B" are one token each; the local judge reads one answer token per letter, so use a model whose tokenizer has them`);
}

/** σ(x) − ½ = tanh(x/2)/2, written so that the two orders of an identical pair cancel exactly. */
const centeredSigmoid = (x: number) => Math.tanh(x / 2) / 2;

/** A judge from a model directory with a tokenizer (loaded here), or an already loaded Pretrained. */
export function localPairwiseJudge(source: string | Pretrained, opts: LocalPairwiseJudgeOptions = {}): LocalPairwiseJudge {
  const owned = typeof source === 'string';
  const pretrained = owned ? loadPretrained(source) : source;
  const { model, tokenizer } = pretrained;
  const where = owned ? source : 'localPairwiseJudge';
  const release = () => { if (owned) model.dispose(); };
  if (tokenizer === null) {
    release();
    throw new Error(`${where}: the model has no tokenizer (tokenizer.json); the local judge needs one to write its prompt`);
  }
  if (tokenizer.vocabSize > model.vocabSize) {
    release();
    throw new Error(`${where}: the tokenizer has ${tokenizer.vocabSize} ids but the model only ${model.vocabSize}; use the model's own tokenizer`);
  }
  const template = opts.template ?? defaultPairwiseTemplate;
  for (const placeholder of ['{prompt}', '{a}', '{b}']) {
    if (!template.includes(placeholder)) throw new Error(`localPairwiseJudge: template lacks ${placeholder}; expected {prompt}, {a} and {b} placeholders`);
  }
  const useChatTemplate = opts.chatTemplate ?? tokenizer.chatTemplate !== null;
  if (useChatTemplate && tokenizer.chatTemplate === null) throw new Error(`localPairwiseJudge: chatTemplate is true but ${tokenizer.source} has no chat template; leave it unset`);
  const answerPrefix = opts.answerPrefix ?? '\nAnswer:';
  const batchSize = opts.batchSize ?? 8;
  const maxLength = opts.maxLength ?? model.maxPositions;
  checkBatchOptions('localPairwiseJudge', batchSize, maxLength);
  const stats = { pairs: 0, sequences: 0, batches: 0 };

  const context = (prompt: string, a: string, b: string): JudgeContext => {
    const filled = fillTemplate(template, prompt, a, b);
    let text: string;
    let ids: number[];
    if (useChatTemplate) {
      text = tokenizer.applyChatTemplate([{ role: 'user', content: filled }], { addGenerationPrompt: true });
      ids = tokenizer.encode(text, { addSpecialTokens: false }); // the template writes its own BOS, if any
    } else {
      // As a standard prompt is tokenized for the policy (prompts.ts): BOS once, no EOS.
      text = filled + answerPrefix;
      const prefix = promptPrefixIds(tokenizer);
      ids = tokenizer.encode(text, { addSpecialTokens: false });
      if (!prefix.every((id, i) => ids[i] === id)) ids = [...prefix, ...ids];
    }
    if (ids.length > maxLength) {
      throw new Error(`local judge ${where}: the judge prompt is ${ids.length} tokens, more than maxLength ${maxLength}; shorten the prompt, the completions or the template`);
    }
    return { ids, answerIds: answerTokenIds(tokenizer, text) };
  };

  const batcher = new MicroBatcher<JudgeContext, AnswerReading>((rows) => inLengthBatches(rows, batchSize, (chunk) => {
    stats.batches++;
    stats.sequences += chunk.length;
    return readAnswers(model, chunk, tokenizer.padTokenId ?? 0);
  }));

  const compare = async (prompt: string, a: string, b: string): Promise<LocalComparison> => {
    stats.pairs++;
    const straightContext = context(prompt, a, b);
    const swappedContext = context(prompt, b, a);
    const same = straightContext.ids.length === swappedContext.ids.length && straightContext.ids.every((id, i) => id === swappedContext.ids[i]);
    const straightReading = batcher.submit(straightContext);
    const [straight, swapped] = await Promise.all([straightReading, same ? straightReading : batcher.submit(swappedContext)]);
    // P(a better) − ½ from each order: a is A in the straight one and B in the swapped one.
    const margin = (centeredSigmoid(straight.logpA - straight.logpB) + centeredSigmoid(swapped.logpB - swapped.logpA)) / 2;
    if (Number.isNaN(margin)) throw new Error(`local judge ${where}: the answer log-probs are not numbers; the model's weights may be corrupt`);
    const pFirst = 0.5 + margin;
    const preference: Preference = margin === 0
      ? { winner: null, confidence: 0.5, status: 'ok' }
      : { winner: margin > 0 ? 0 : 1, confidence: margin > 0 ? pFirst : 1 - pFirst, status: 'ok' };
    return { straight, swapped, pFirst, preference };
  };

  return {
    name: `local-judge:${owned ? source : model.modelType}`,
    compare,
    context,
    stats: () => ({ ...stats }),
    dispose: release,
    async prefer(prompt, a, b) {
      return (await compare(prompt, a, b)).preference;
    },
  };
}

/** One right-padded forward of the contexts; each row's next-token log-probs of its two answer ids. */
function readAnswers(model: CausalLM, rows: readonly JudgeContext[], padId: number): AnswerReading[] {
  return noGrad(() => scope(() => {
    const { ids, mask } = rightPad(rows.map((r) => r.ids), padId);
    const hidden = model.forward(ids, { attentionMask: mask }); // (B, T, C)
    const logits = model.logits(hiddenAt(hidden, rows.map((r) => r.ids.length - 1))).data; // (B, V)
    const v = model.vocabSize;
    return rows.map((row, b) => {
      let max = -Infinity;
      for (let j = 0; j < v; j++) max = Math.max(max, logits[b * v + j]);
      let sum = 0;
      for (let j = 0; j < v; j++) sum += Math.exp(logits[b * v + j] - max);
      const logZ = max + Math.log(sum); // log Σ exp(logits), in float64
      return { logpA: logits[b * v + row.answerIds[0]] - logZ, logpB: logits[b * v + row.answerIds[1]] - logZ };
    });
  }));
}
