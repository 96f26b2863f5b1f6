// `dpo generate`: continues one prompt with a model directory and streams the text to stdout as it is produced.
// Defaults come from the model's generation_config.json (greedy when it has none); flags override them. A summary
// line (tokens, tokens/s, why it stopped) goes to stderr, so stdout holds only the text.
import { currentBackend } from '../backends/index.js';
import { createStreamDecoder, requireTokenizer } from '../io/tokenizer.js';
import { generationDefaults, loadPretrained } from '../io/pretrained.js';
import { generate, type GenerateOptions } from '../models/generate.js';
import { UsageError, parseFlags, usage } from './args.js';

const flags = {
  model: { type: 'string', default: undefined, help: 'model directory (config.json, *.safetensors, tokenizer.json)' },
  prompt: { type: 'string', default: undefined, help: 'the prompt text' },
  chat: { type: 'boolean', default: false, help: 'wrap the prompt as a user turn with the chat template (add_generation_prompt)' },
  'max-new-tokens': { type: 'number', default: undefined, help: 'new tokens at most (default: generation_config.json, else 64)' },
  temperature: { type: 'number', default: undefined, help: '0 is greedy; > 0 samples (default: generation_config.json, else 0)' },
  'top-p': { type: 'number', default: undefined, help: 'nucleus sampling: keep the most likely tokens up to this total probability (alone, it implies --temperature 1)' },
  'top-k': { type: 'number', default: undefined, help: 'sample among the k most likely tokens, 0 keeps all (alone, it implies --temperature 1)' },
  seed: { type: 'number', default: 0, help: 'sampling seed' },
} as const;

const COMMAND = 'dpo generate';

export function runGenerate(argv: readonly string[]): void {
  const o = parseFlags(argv, flags, COMMAND);
  if (o.model === undefined) throw new UsageError(`${COMMAND}: --model DIR is required\n${usage(flags)}`);
  if (o.prompt === undefined) throw new UsageError(`${COMMAND}: --prompt TEXT is required\n${usage(flags)}`);
  currentBackend(); // selects the backend before the first tensor
  const loaded = loadPretrained(o.model);
  const tokenizer = loaded.tokenizer ?? requireTokenizer(o.model); // requireTokenizer throws the actionable error
  if (o.chat && tokenizer.chatTemplate === null) {
    throw new Error(`${COMMAND} --chat: ${o.model} has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja); drop --chat to use the prompt as plain text`);
  }
  const text = o.chat ? tokenizer.applyChatTemplate([{ role: 'user', content: o.prompt }], { addGenerationPrompt: true }) : o.prompt;
  // A chat template writes its own special tokens (BOS, …), so they are not added again, as HF's apply_chat_template.
  const promptIds = tokenizer.encode(text, { addSpecialTokens: !o.chat });

  const defaults = generationDefaults(loaded);
  const opts: GenerateOptions = {
    ...defaults,
    maxNewTokens: o['max-new-tokens'] ?? defaults.maxNewTokens ?? 64,
    temperature: o.temperature ?? defaults.temperature,
    topP: o['top-p'] ?? defaults.topP,
    topK: o['top-k'] ?? defaults.topK,
    seed: o.seed,
  };
  if (o.temperature === undefined && (o['top-p'] !== undefined || o['top-k'] !== undefined) && opts.temperature === 0) opts.temperature = 1;
  // The model's context length bounds the continuation (GPT-2 has 1024 learned positions).
  opts.maxNewTokens = Math.max(0, Math.min(opts.maxNewTokens ?? 0, loaded.model.maxPositions - promptIds.length));

  const stream = createStreamDecoder(tokenizer, { skipSpecialTokens: true });
  const start = process.hrtime.bigint();
  const result = generate(loaded.model, [promptIds], {
    ...opts,
    onToken: (_row, id) => {
      // A model's vocabulary may be padded past the tokenizer's; such ids have no text.
      if (tokenizer.idToToken(id) !== null) process.stdout.write(stream.push(id));
    },
  });
  process.stdout.write(stream.flush() + '\n');
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const n = result.tokens[0].length;
  process.stderr.write(`[${n} tokens from a ${promptIds.length}-token prompt in ${seconds.toFixed(2)} s, ${(n / seconds).toFixed(1)} tokens/s; stopped at ${result.finishReasons[0]}]\n`);
  loaded.model.dispose();
}
