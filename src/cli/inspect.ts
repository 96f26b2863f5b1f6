// `dpo inspect`: what a model directory holds, without loading its weights: the architecture and sizes from
// config.json, the parameter count and stored dtypes from the safetensors headers, and the tokenizer's vocabulary,
// special tokens and chat template. Human-readable by default; --json prints one JSON object.
import { join } from 'node:path';
import { CONFIG_FILE, readModelDirConfig, summarizeWeights } from '../io/pretrained.js';
import { loadTokenizer } from '../io/tokenizer.js';
import { hfArchitectures, parseModelConfig } from '../models/index.js';
import { UsageError, parseFlags, usage } from './args.js';

const flags = {
  model: { type: 'string', default: undefined, help: 'model directory' },
  json: { type: 'boolean', default: false, help: 'print one JSON object instead of text' },
} as const;

const COMMAND = 'dpo inspect';

interface SpecialToken {
  token: string;
  id: number | null;
}

/** The facts `dpo inspect` reports; --json prints this object. */
export interface ModelDirInfo {
  model: string;
  architecture: string;
  model_type: string;
  /** Stored elements, a tied head counted once (as HF's num_parameters). */
  parameters: number;
  /** Stored dtypes joined with '+', e.g. 'F32' or 'BF16+F32'. */
  weights_dtype: string;
  weight_files: string[];
  layers: number;
  hidden_size: number;
  heads: number;
  max_positions: number;
  vocab_size: number;
  tokenizer: null | {
    vocab_size: number;
    special_tokens: { bos: SpecialToken | null; eos: SpecialToken | null; pad: SpecialToken | null; unk: SpecialToken | null };
    chat_template: boolean;
  };
}

export function inspectModelDir(dir: string): ModelDirInfo {
  const config = readModelDirConfig(dir);
  const mc = parseModelConfig(config, join(dir, CONFIG_FILE));
  const weights = summarizeWeights(dir);
  const tokenizer = loadTokenizer(dir);
  const special = (token: string | null, id: number | null): SpecialToken | null => (token === null ? null : { token, id });
  return {
    model: dir,
    architecture: hfArchitectures[mc.modelType],
    model_type: mc.modelType,
    parameters: weights.numParameters,
    weights_dtype: Object.keys(weights.dtypes).join('+'),
    weight_files: weights.files,
    layers: mc.numLayers,
    hidden_size: mc.hiddenSize,
    heads: mc.numHeads,
    max_positions: mc.maxPositions,
    vocab_size: mc.vocabSize,
    tokenizer: tokenizer && {
      vocab_size: tokenizer.vocabSize,
      special_tokens: {
        bos: special(tokenizer.bosToken, tokenizer.bosTokenId),
        eos: special(tokenizer.eosToken, tokenizer.eosTokenId),
        pad: special(tokenizer.padToken, tokenizer.padTokenId),
        unk: special(tokenizer.unkToken, tokenizer.unkTokenId),
      },
      chat_template: tokenizer.chatTemplate !== null,
    },
  };
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function runInspect(argv: readonly string[]): void {
  const o = parseFlags(argv, flags, COMMAND);
  if (o.model === undefined) throw new UsageError(`${COMMAND}: --model DIR is required\n${usage(flags)}`);
  const info = inspectModelDir(o.model);
  if (o.json) {
    console.log(JSON.stringify(info));
    return;
  }
  const tok = info.tokenizer;
  const lines = [
    `model:         ${o.model}`,
    `architecture:  ${info.architecture} (model_type ${info.model_type}): ${info.layers} layers, hidden ${info.hidden_size}, ${info.heads} heads, ${info.max_positions} positions`,
    `parameters:    ${formatCount(info.parameters)} (${info.parameters})`,
    `weights:       ${info.weights_dtype} in ${info.weight_files.join(', ')}`,
    `vocabulary:    ${info.vocab_size} (model)${tok ? `, ${tok.vocab_size} (tokenizer)` : ''}`,
  ];
  if (tok) {
    const specials = Object.entries(tok.special_tokens).flatMap(([k, t]) => (t === null ? [] : [`${k} ${JSON.stringify(t.token)} = ${t.id}`]));
    lines.push(`special tokens: ${specials.length > 0 ? specials.join(', ') : 'none'}`);
    lines.push(`chat template: ${tok.chat_template ? 'yes' : 'no'}`);
  } else {
    lines.push('tokenizer:     none (no tokenizer.json)');
  }
  console.log(lines.join('\n'));
}
